namespace RedisPoolKit;

/// <summary>The one place every default lives; option XML docs quote these values.</summary>
internal static class RedisPoolDefaults
{
    public const string Name = "default";

    // Sockets. One multiplexer pipelines every caller's commands on one socket and a second one costs
    // throughput on a small machine (docs/Architecture.md), so the default keeps one and allows one more on measured saturation.
    public const int MaxConnections = 8;
    public const int MinMultiplexers = 1;
    public const int MaxMultiplexers = 2;

    // Admission. A multiplexer pipelines, so in-flight is large; the queue absorbs a short burst and
    // sheds anything that would wait longer than a typical request budget.
    public const int MaxInFlight = 1024;
    public const int MaxQueueLength = 1024;
    public static readonly TimeSpan QueueTimeout = TimeSpan.FromSeconds(1);

    // No fixed in-flight limit is right for every server, network and command mix: by default it follows latency,
    // between MaxInFlight and a floor that keeps a pipeline busy while latency is still being learned or noisy: below
    // 64 callers' worth, a busy machine's noise moved commands into the pool's queue (costlier than the socket's) for nothing.
    public const bool AdaptiveInFlight = true;
    public const int AdaptiveInFlightFloor = 64;

    // StackExchange.Redis's own default; a connect against a full server can take anywhere up to 10 s (docs/Architecture.md).
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    // Long enough for in-flight commands (sub-millisecond to a few ms) and short enough for a rolling deploy.
    public static readonly TimeSpan ShutdownGracePeriod = TimeSpan.FromSeconds(5);

    public const int MaxLeases = 4;
    public const int MinIdleLeases = 0;
    public static readonly TimeSpan LeaseAcquireTimeout = TimeSpan.FromSeconds(5);
    public const int MaxLeaseWaiters = 256;
    public static readonly TimeSpan LeaseIdleTimeout = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan LeaseMaxLifetime = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan LeaseValidateAfterIdle = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan LeaseCommandTimeout = TimeSpan.FromSeconds(60);

    public static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan MaxBreakDuration = TimeSpan.FromSeconds(60);
    public const bool TripOnConnectFailures = true;
    public const int ConnectFailureThreshold = 3;

    public const bool MonitorEnabled = true;
    public static readonly TimeSpan MonitorPollInterval = TimeSpan.FromSeconds(15);
    public const double WarningUtilization = 0.8;
    public const double CriticalUtilization = 0.95;
}
