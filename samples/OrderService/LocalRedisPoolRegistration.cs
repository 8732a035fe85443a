using Microsoft.Extensions.Diagnostics.HealthChecks;
using RedisPoolKit;

namespace OrderService;

/// <summary>
/// Stand-in for RedisPoolKit's <c>AddRedisPool(name, section).AddHealthCheck()</c> until the DI feature is on main.
/// Delete this file then and, in Program.cs, replace <c>AddLocalRedisPool(...)</c> with
/// <c>builder.Services.AddRedisPool(Pools.Orders, section).AddHealthCheck();</c>.
/// </summary>
internal static class LocalRedisPoolRegistration
{
    public static IServiceCollection AddLocalRedisPool(this IServiceCollection services, string name, IConfiguration section)
    {
        services.AddKeyedSingleton<IRedisPool>(name, (provider, _) =>
        {
            var options = new RedisPoolOptions();
            section.Bind(options);
            options.Name = name;
            return new RedisPool(options, provider.GetService<ILoggerFactory>());
        });
        services.AddHostedService(provider => new PoolStarter(provider.GetRequiredKeyedService<IRedisPool>(name)));
        services.AddHealthChecks().Add(new HealthCheckRegistration($"redispool-{name}",
            provider => new PoolHealthCheck(provider.GetRequiredKeyedService<IRedisPool>(name)), HealthStatus.Unhealthy, tags: null));
        return services;
    }

    private sealed class PoolStarter(IRedisPool pool) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => pool.ConnectAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => pool.DisposeAsync().AsTask();
    }

    private sealed class PoolHealthCheck(IRedisPool pool) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var latency = await pool.GetDatabase().PingAsync();
                return pool.CircuitState == RedisPoolCircuitState.Closed
                    ? HealthCheckResult.Healthy($"PING {latency.TotalMilliseconds:0.0} ms")
                    : HealthCheckResult.Degraded($"circuit {pool.CircuitState}");
            }
            catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException or NotImplementedException)
            {
                return HealthCheckResult.Unhealthy("Redis pool unavailable", ex);
            }
        }
    }
}
