using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

internal static partial class Log
{
    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Pool '{Pool}' lease {LeaseId} on {Node}: {Command} was redirected to {Target} (its slot is moving or moved) and did not run; running it once on a lease socket there")]
    public static partial void LeaseRedirectFollowed(ILogger logger, string pool, long leaseId, System.Net.EndPoint? node, string command, System.Net.EndPoint target);
}
