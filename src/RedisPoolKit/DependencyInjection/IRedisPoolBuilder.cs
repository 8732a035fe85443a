namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Returned by <c>AddRedisPool</c>: adds registrations that belong to one pool (the drop-in
/// <see cref="StackExchange.Redis.IConnectionMultiplexer"/>, its health check).
/// </summary>
public interface IRedisPoolBuilder
{
    /// <summary>The service collection the pool is registered in.</summary>
    IServiceCollection Services { get; }

    /// <summary>The pool's name: its DI key, its options name and its <see cref="RedisPoolKit.RedisPoolOptions.Name"/>.</summary>
    string Name { get; }
}
