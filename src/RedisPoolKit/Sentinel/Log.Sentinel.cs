using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

internal static partial class Log
{
    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Pool '{Pool}': the master of '{Service}' is {Master}; following its failovers over {Sockets} sentinel sockets ({Sentinels})")]
    public static partial void SentinelMasterFound(ILogger logger, string pool, string service, string master, int sockets, string sentinels);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Pool '{Pool}': Sentinel is failing '{Service}' over away from {Master} ({Stage} from {Sentinel}); new commands wait in the admission queue until the master is switched. Lease sockets to {Master} retired: {Idle} idle closed, {Held} held fail their next command")]
    public static partial void SentinelFailoverStarted(ILogger logger, string pool, string service, string master, string stage, string sentinel, int idle, int held);

    [LoggerMessage(EventId = 702, Level = LogLevel.Warning, Message = "Pool '{Pool}' moved '{Service}' from {Old} to {New} (role {Role}) after holding commands {HeldMs:F0} ms: {Multiplexers} multiplexers retired, {Idle} idle lease sockets closed, {Held} held ones fail their next command ({Reason})")]
    public static partial void SentinelSwitched(ILogger logger, string pool, string service, string old, string @new, string role, double heldMs, int multiplexers, int idle, int held, string reason);

    [LoggerMessage(EventId = 703, Level = LogLevel.Information, Message = "Pool '{Pool}' resumed commands on {Master}, the master of '{Service}', after holding them {HeldMs:F0} ms: {Reason}")]
    public static partial void SentinelResumed(ILogger logger, string pool, string service, string master, double heldMs, string reason);

    [LoggerMessage(EventId = 704, Level = LogLevel.Error, Message = "Pool '{Pool}' could not confirm or move to the master of '{Service}'; commands resume on the master it points at now")]
    public static partial void SentinelSwitchFailed(ILogger logger, string pool, string service, Exception exception);
}
