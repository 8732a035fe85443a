using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

// Event ids 400-449: pool lifetime under a host.
internal static partial class Log
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Pool '{Pool}' connected to {EndPoints} at host start in {ElapsedMs:F0} ms")]
    public static partial void HostStartConnected(ILogger logger, string pool, string endPoints, double elapsedMs);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Pool '{Pool}' could not connect to {EndPoints} at host start after {ElapsedMs:F0} ms; the host starts degraded and the pool keeps trying under its breaker (RequireConnectionOnStart is false)")]
    public static partial void HostStartDegraded(ILogger logger, Exception exception, string pool, string endPoints, double elapsedMs);

    [LoggerMessage(EventId = 402, Level = LogLevel.Error, Message = "Pool '{Pool}' could not connect to {EndPoints} at host start after {ElapsedMs:F0} ms; failing the start (set RequireConnectionOnStart to false to start degraded instead)")]
    public static partial void HostStartFailed(ILogger logger, Exception exception, string pool, string endPoints, double elapsedMs);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "Pool '{Pool}' stopped with the host in {ElapsedMs:F0} ms (ShutdownGracePeriod {GracePeriod})")]
    public static partial void HostStopped(ILogger logger, string pool, double elapsedMs, TimeSpan gracePeriod);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "Pool '{Pool}' was still closing when the host's shutdown timeout ran out after {ElapsedMs:F0} ms; raise HostOptions.ShutdownTimeout above ShutdownGracePeriod ({GracePeriod}) so in-flight work can finish")]
    public static partial void HostStopCutShort(ILogger logger, string pool, double elapsedMs, TimeSpan gracePeriod);
}
