using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

internal static partial class Log
{
    [LoggerMessage(EventId = 1800, Level = LogLevel.Information, Message = "Pool '{Pool}' fleet share changed from {Previous} to {Limit} sockets ({Instances} instances share 'Fleet.MaxConnections' {FleetMax}): {Reason}")]
    public static partial void FleetShareChanged(ILogger logger, string pool, int previous, int limit, int instances, int fleetMax, string reason);

    [LoggerMessage(EventId = 1801, Level = LogLevel.Warning, Message = "Pool '{Pool}' fleet heartbeat failed ({Cause}); the share stays as it is until 'Fleet.InstanceTtl' passes without one, then drops to what the instance needs")]
    public static partial void FleetHeartbeatFailed(ILogger logger, string pool, string cause, Exception? exception);

    [LoggerMessage(EventId = 1802, Level = LogLevel.Information, Message = "Pool '{Pool}' fleet heartbeat restored: {Instances} instances registered")]
    public static partial void FleetHeartbeatRestored(ILogger logger, string pool, int instances);

    [LoggerMessage(EventId = 1803, Level = LogLevel.Warning, Message = "Pool '{Pool}' fleet over-committed: {Instances} instances each need {Floor} sockets to work, {Needed} together, more than 'Fleet.MaxConnections' ({FleetMax}); raise it or run fewer instances")]
    public static partial void FleetOverCommitted(ILogger logger, string pool, int instances, int floor, int needed, int fleetMax);

    [LoggerMessage(EventId = 1804, Level = LogLevel.Debug, Message = "Pool '{Pool}' removed fleet registration of instance {InstanceId}")]
    public static partial void FleetDeregistered(ILogger logger, string pool, string instanceId);

    [LoggerMessage(EventId = 1805, Level = LogLevel.Warning, Message = "Pool '{Pool}' could not remove fleet registration of instance {InstanceId}; it expires within 'Fleet.InstanceTtl' ({TtlSeconds:F0} s)")]
    public static partial void FleetDeregisterFailed(ILogger logger, string pool, string instanceId, double ttlSeconds, Exception exception);
}
