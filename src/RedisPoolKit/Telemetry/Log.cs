using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// Every log line of RedisPoolKit, with fixed event ids. Messages carry endpoints and client names, never
/// the configuration string (it may hold a password).
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Pool '{Pool}' opened socket {ClientName} to {EndPoints} in {ElapsedMs:F1} ms")]
    public static partial void SocketOpened(ILogger logger, string pool, string clientName, string endPoints, double elapsedMs);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Pool '{Pool}' could not open socket {ClientName} to {EndPoints} after {ElapsedMs:F0} ms: {Cause}")]
    public static partial void SocketFailed(ILogger logger, string pool, string clientName, string endPoints, double elapsedMs, string cause);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Pool '{Pool}' closed socket {ClientName}")]
    public static partial void SocketClosed(ILogger logger, string pool, string clientName);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Pool '{Pool}' lost connection {ClientName} to {EndPoint}: {FailureType}")]
    public static partial void ConnectionFailed(ILogger logger, string pool, string clientName, string endPoint, string failureType);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Pool '{Pool}' restored connection {ClientName} to {EndPoint}")]
    public static partial void ConnectionRestored(ILogger logger, string pool, string clientName, string endPoint);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Pool '{Pool}' added multiplexer {Index} ({Multiplexers} now): {Reason}")]
    public static partial void MultiplexerAdded(ILogger logger, string pool, int index, int multiplexers, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Pool '{Pool}' retired multiplexer {Index} ({Multiplexers} left): {Reason}")]
    public static partial void MultiplexerRetired(ILogger logger, string pool, int index, int multiplexers, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Pool '{Pool}' rejected {Count} callers in the last {WindowSeconds:F0} s ({Reason}); last: {Message}")]
    public static partial void Rejections(ILogger logger, string pool, long count, double windowSeconds, string reason, string message);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "Pool '{Pool}' disposed: {Sockets} sockets closed, {InFlight} commands were still in flight after the grace period")]
    public static partial void Disposed(ILogger logger, string pool, int sockets, int inFlight);

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Pool '{Pool}' max-clients breaker opened (was {PreviousState}): {Reason}. Sockets already open keep serving; reconnects suppressed so far {ReconnectsSuppressed}, socket creations refused {RejectedCircuitOpen}")]
    public static partial void BreakerOpened(ILogger logger, string pool, RedisPoolCircuitState previousState, string reason, long reconnectsSuppressed, long rejectedCircuitOpen);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Pool '{Pool}' max-clients breaker half-open: {Reason}")]
    public static partial void BreakerHalfOpen(ILogger logger, string pool, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Pool '{Pool}' max-clients breaker closed: {Reason}; reconnects suppressed so far {ReconnectsSuppressed}, socket creations refused {RejectedCircuitOpen}")]
    public static partial void BreakerClosed(ILogger logger, string pool, string reason, long reconnectsSuppressed, long rejectedCircuitOpen);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Pool '{Pool}' classified a socket failure as {Kind}: {Description} ({ConsecutiveConnectFailures} consecutive connect failures)")]
    public static partial void BreakerFailureClassified(ILogger logger, string pool, MaxClientsClassifier.FailureKind kind, string description, int consecutiveConnectFailures);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Pool '{Pool}' could not classify a socket failure")]
    public static partial void BreakerClassificationFailed(ILogger logger, string pool, Exception exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Error, Message = "Pool '{Pool}' CircuitStateChanged handler threw")]
    public static partial void BreakerHandlerFailed(ILogger logger, string pool, Exception exception);

    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "Pool '{Pool}' lease {LeaseId} on {ClientName} has been held for {AgeMs:F0} ms, longer than 'Leases.LeakDetectionThreshold' ({ThresholdMs:F0} ms): possible leak. Acquired at:\n{StackTrace}")]
    public static partial void LeaseLeakSuspected(ILogger logger, string pool, long leaseId, string clientName, double ageMs, double thresholdMs, string stackTrace);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Pool '{Pool}' lease {LeaseId} on {ClientName}, suspected of leaking, was returned after {AgeMs:F0} ms")]
    public static partial void LeaseLeakReturned(ILogger logger, string pool, long leaseId, string clientName, double ageMs);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Pool '{Pool}' discarded lease socket {ClientName}: {Reason}")]
    public static partial void LeaseSocketDiscarded(ILogger logger, string pool, string clientName, string reason);

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "Pool '{Pool}' retired lease socket {ClientName}: {Reason}")]
    public static partial void LeaseSocketRetired(ILogger logger, string pool, string clientName, string reason);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Pool '{Pool}' cancelled {Command} on lease socket {ClientName} (CLIENT ID {ClientId}) but could not prove the socket clean ({Cause}); it is closed instead of returned")]
    public static partial void LeaseUnblockUnproven(ILogger logger, string pool, string command, string clientName, long clientId, string cause);

    [LoggerMessage(EventId = 205, Level = LogLevel.Information, Message = "Pool '{Pool}' lease pool disposed: {Forced} leases still held after 'ShutdownGracePeriod' ({GraceMs:F0} ms) were closed")]
    public static partial void LeasePoolDisposed(ILogger logger, string pool, int forced, double graceMs);

    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "Pool '{Pool}' could not close lease socket {ClientName} cleanly")]
    public static partial void LeaseCloseFailed(ILogger logger, string pool, string clientName, Exception exception);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Pool '{Pool}' refused a {Role} socket of {ClientName} to node {Node}: {Budget}. Commands for that node fail until a slot frees; raise 'MaxConnections' (currently {Max}) or lower 'MaxMultiplexers'/'Leases.MaxLeases'")]
    public static partial void NodeSocketRefused(ILogger logger, string pool, string role, string clientName, string node, string budget, int max);
}
