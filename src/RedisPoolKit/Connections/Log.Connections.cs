using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

// What the server or the deployment takes away from the pool (output limits, ACL permissions, renamed commands): event ids 500-549.
internal static partial class Log
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Pool '{Pool}' now carries a pub/sub subscription on its shared multiplexer socket: the server treats that socket as a pub/sub client, so 'client-output-buffer-limit pubsub' (Redis default: 32 MB at once, or 8 MB for 60 s) applies to every reply on it, and a larger reply (a GET of a 32 MB value) makes the server close the socket and fail every command in flight on it. Set 'SharedSubscriptionConnection' to false (one more socket per multiplexer) or raise the server's pubsub limit if the application reads values that large.")]
    public static partial void SharedSocketSubscribed(ILogger logger, string pool);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Pool '{Pool}' turned off {Feature}: the server refused {Command} ({Cause}). Lost: {Lost}. Everything else keeps working. To restore it, {Remedy}")]
    public static partial void PoolFeatureOff(ILogger logger, string pool, string feature, string command, string cause, string lost, string remedy);

    [LoggerMessage(EventId = 502, Level = LogLevel.Warning, Message = "Pool '{Pool}' closed a lease socket because a cancelled blocking command could not be unblocked (CLIENT ID or CLIENT UNBLOCK is not permitted); every such cancel closes its socket, counted in 'redispoolkit.leases.unblock_unavailable'. Said once per pool.")]
    public static partial void CancelClosesLeaseSocket(ILogger logger, string pool);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning, Message = "Pool '{Pool}' server monitor cannot compute utilization of {EndPoint}: the server reports no maxclients in INFO clients (Redis before 6.2) and CONFIG GET maxclients is refused. Set 'Monitor.MaxClients' to the server's limit (your provider's tier documents it). Said once.")]
    public static partial void MonitorMaxClientsUnknown(ILogger logger, string pool, string endPoint);
}
