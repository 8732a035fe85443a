using Microsoft.Extensions.DependencyInjection;

namespace RedisPoolKit;

internal sealed class RedisPoolBuilder(IServiceCollection services, string name, bool isDefault) : IRedisPoolBuilder
{
    public IServiceCollection Services { get; } = services;

    public string Name { get; } = name;

    /// <summary>The pool registered by <c>AddRedisPool(configure)</c>: it also answers unkeyed resolutions.</summary>
    public bool IsDefault { get; } = isDefault;
}
