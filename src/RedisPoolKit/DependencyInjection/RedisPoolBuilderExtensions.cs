using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RedisPoolKit;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds registrations that belong to one pool.</summary>
public static class RedisPoolBuilderExtensions
{
    /// <summary>
    /// Registers the pool's drop-in <see cref="IConnectionMultiplexer"/> (<see cref="IRedisPool.Multiplexer"/>):
    /// keyed by the pool's name, and unkeyed for the default pool, so constructors that take an
    /// <see cref="IConnectionMultiplexer"/> run unchanged over the pool. Disposing it does not dispose the pool.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// For the default pool: another unkeyed <see cref="IConnectionMultiplexer"/> is already registered; it would open
    /// sockets outside the pool's budget.
    /// </exception>
    public static IRedisPoolBuilder AddConnectionMultiplexer(this IRedisPoolBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var name = builder.Name;
        if (services.Any(d => d.ServiceType == typeof(RedisPoolMultiplexerRegistration) && d.ImplementationInstance is RedisPoolMultiplexerRegistration r && r.Name == name))
        {
            return builder;
        }

        var isDefault = builder is RedisPoolBuilder { IsDefault: true };
        if (isDefault && services.Any(d => d.ServiceType == typeof(IConnectionMultiplexer) && !d.IsKeyedService))
        {
            throw new InvalidOperationException(
                "An IConnectionMultiplexer is already registered. Remove that registration: AddConnectionMultiplexer() registers the default pool's multiplexer in its place, and a second multiplexer would hold sockets outside the pool's MaxConnections budget.");
        }

        services.AddSingleton(new RedisPoolMultiplexerRegistration(name));
        services.AddKeyedSingleton(name, (provider, _) => provider.GetRequiredKeyedService<IRedisPool>(name).Multiplexer);
        if (isDefault)
        {
            services.AddSingleton(provider => provider.GetRequiredKeyedService<IRedisPool>(name).Multiplexer);
        }

        return builder;
    }

    /// <summary>Registers the pool's health check with <c>AddHealthChecks()</c>.</summary>
    /// <param name="builder">The pool.</param>
    /// <param name="name">The health check's name; default <c>"redispool-{pool name}"</c>.</param>
    /// <param name="failureStatus">The status reported when the pool is unhealthy; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter health checks by (e.g. <c>"ready"</c>).</param>
    public static IRedisPoolBuilder AddHealthCheck(this IRedisPoolBuilder builder, string? name = null, HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var poolName = builder.Name;

        // The registration's factory runs on every check; the check keeps state between runs (how long callers
        // have been waiting), so it is one singleton per pool.
        builder.Services.TryAddKeyedSingleton(poolName, (provider, _) => new RedisPoolHealthCheck(
            provider.GetRequiredKeyedService<IRedisPool>(poolName),
            provider.GetService<TimeProvider>() ?? TimeProvider.System));
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            name ?? $"redispool-{poolName}",
            provider => provider.GetRequiredKeyedService<RedisPoolHealthCheck>(poolName),
            failureStatus,
            tags));
        return builder;
    }
}
