namespace RedisPoolKit;

/// <summary>
/// The lease pool's bookkeeping clock: idle and lifetime checks, lease wait and hold times.
/// </summary>
/// <remarks>
/// On the system's <see cref="TimeProvider"/> it reads <see cref="Environment.TickCount64"/>, a coarse clock far
/// cheaper than <see cref="TimeProvider.GetTimestamp"/> on a VM, where that read was a large share of the lease fast
/// path (two reads per acquire and release). .NET's own HTTP connection pool keeps idle and lifetime
/// on the same clock. It may lag real time by one tick (up to <see cref="Resolution"/>), so idle eviction waits
/// that much past <c>IdleTimeout</c>. Any other provider (a test's <c>FakeTimeProvider</c>) is read exactly.
/// </remarks>
internal readonly struct LeaseClock
{
    // Windows ticks every 15.6 ms; Linux's coarse clock every jiffy (1-10 ms).
    private static readonly TimeSpan s_coarseResolution = TimeSpan.FromMilliseconds(16);

    private readonly TimeProvider? _provider;
    private readonly double _ticksPerTimestamp;
    private readonly double _timestampsPerTick;

    public LeaseClock(TimeProvider provider)
    {
        _provider = ReferenceEquals(provider, TimeProvider.System) ? null : provider;
        var frequency = _provider?.TimestampFrequency ?? 1_000;
        _ticksPerTimestamp = TimeSpan.TicksPerSecond / (double)frequency;
        _timestampsPerTick = frequency / (double)TimeSpan.TicksPerSecond;
        Resolution = _provider is null ? s_coarseResolution : TimeSpan.Zero;
    }

    /// <summary>How far a reading may lag real time.</summary>
    public TimeSpan Resolution { get; }

    public long Now => _provider is null ? Environment.TickCount64 : _provider.GetTimestamp();

    public TimeSpan Elapsed(long start, long end) => new((long)((end - start) * _ticksPerTimestamp));

    public TimeSpan ElapsedSince(long start) => Elapsed(start, Now);

    /// <summary>A duration in this clock's units, capped far below overflow for the longest options.</summary>
    public long ToTimestamps(TimeSpan duration) => (long)Math.Min(duration.Ticks * _timestampsPerTick, long.MaxValue / 4);
}
