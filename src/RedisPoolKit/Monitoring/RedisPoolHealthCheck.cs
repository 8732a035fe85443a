using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace RedisPoolKit;

// PLACEHOLDER: the telemetry task replaces this file; DI registers it with exactly this constructor.
internal sealed class RedisPoolHealthCheck : IHealthCheck
{
    public RedisPoolHealthCheck(IRedisPool pool, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(timeProvider);
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(HealthCheckResult.Healthy());
}
