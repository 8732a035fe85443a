using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>Builds the pool's internal parts for tests that exercise one of them against a real server.</summary>
internal static class PoolParts
{
    public static MaxClientsBreaker Breaker(RedisPoolOptions options, ILogger logger, TimeProvider? timeProvider = null)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration!);
        return new MaxClientsBreaker(options.Name, options.Breaker, configuration.EndPoints, configuration.Ssl, options.ConnectTimeout, timeProvider ?? TimeProvider.System, logger, metrics: null);
    }
}
