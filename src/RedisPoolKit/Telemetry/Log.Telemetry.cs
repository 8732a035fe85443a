using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

// Telemetry and monitoring log lines: event ids 300-349.
internal static partial class Log
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Pool '{Pool}' server monitor may not run {Command} on {EndPoint} ({Cause}); it carries on without {Missing}. Grant the command (ACL) or enable admin mode to see it.")]
    public static partial void MonitorCommandForbidden(ILogger logger, string pool, string command, string endPoint, string cause, string missing);

    [LoggerMessage(EventId = 301, Message = "Pool '{Pool}' server {EndPoint} utilization {Utilization:P0} ({ConnectedClients} of {MaxClients} clients, {BlockedClients} blocked): {PreviousLevel} -> {NewLevel}")]
    public static partial void UtilizationLevelChanged(ILogger logger, LogLevel logLevel, string pool, string endPoint, double utilization, long connectedClients, long maxClients, long blockedClients, RedisServerUtilizationLevel previousLevel, RedisServerUtilizationLevel newLevel);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "Pool '{Pool}' server monitor could not read the server's counters: {Cause}")]
    public static partial void MonitorPollFailed(ILogger logger, string pool, string cause);

    [LoggerMessage(EventId = 303, Level = LogLevel.Debug, Message = "Pool '{Pool}' server monitor skipped a reading: no connected multiplexer to read over")]
    public static partial void MonitorNoConnection(ILogger logger, string pool);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Pool '{Pool}' server utilization event handler threw {ExceptionType}")]
    public static partial void MonitorHandlerFailed(ILogger logger, string pool, string exceptionType);
}
