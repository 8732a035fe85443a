using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

// What the server or the deployment takes away from the pool (output limits, ACL permissions, renamed commands): event ids 500-549.
internal static partial class Log
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Pool '{Pool}' now carries a pub/sub subscription on its shared multiplexer socket: the server treats that socket as a pub/sub client, so 'client-output-buffer-limit pubsub' (Redis default: 32 MB at once, or 8 MB for 60 s) applies to every reply on it, and a larger reply (a GET of a 32 MB value) makes the server close the socket and fail every command in flight on it. Set 'SharedSubscriptionConnection' to false (one more socket per multiplexer) or raise the server's pubsub limit if the application reads values that large.")]
    public static partial void SharedSocketSubscribed(ILogger logger, string pool);
}
