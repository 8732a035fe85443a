namespace RedisPoolKit;

/// <summary>
/// The in-flight limit of the admission limiter, found from measured latency (a gradient limiter in the TCP Vegas
/// family): it grows while sampled commands complete near their no-load baseline latency and shrinks in proportion
/// when queueing delay appears, between a floor and the ceiling <c>MaxInFlight</c>.
/// </summary>
/// <remarks>
/// <para>
/// Only one command in <see cref="SampleEvery"/> is timed, and only its completion does any arithmetic: it adds its
/// latency to the current window with interlocked adds, and the completion that closes a window (at least
/// <see cref="Window"/> long and <see cref="MinSamples"/> samples) computes the next limit. Every other command pays
/// only for the permit count and the sampling tick.
/// </para>
/// <para>
/// The baseline is the lowest window mean seen over two epochs of <see cref="BaselineEpoch"/>: a minimum, so a
/// sustained overload does not teach it that queueing is normal, and forgotten after an epoch or two, so a lasting
/// change (a failover to a farther node) is learned. A window whose mean latency stays within the target
/// (<see cref="Tolerance"/> times the baseline, or the baseline plus <see cref="QueueDelayAllowance"/>, whichever is
/// more) grows the limit by its square root, but only when the pool used at least half of it (a light load proves
/// nothing about a larger one); a window above the target multiplies the limit by target / latency, never by less
/// than one half. The allowance keeps the limit from throttling a pipelined multiplexer for the millisecond or two
/// of delay that batching causes and that no caller notices; the square root grows a small limit quickly and a large one
/// carefully.
/// </para>
/// </remarks>
internal sealed class AdaptiveInFlightLimit
{
    /// <summary>One command in this many is timed (a power of two).</summary>
    public const int SampleEvery = 16;

    public const int MinSamples = 8;

    public const double Tolerance = 2.0;

    public const double MinGradient = 0.5;

    public static readonly TimeSpan Window = TimeSpan.FromMilliseconds(100);

    public static readonly TimeSpan QueueDelayAllowance = TimeSpan.FromMilliseconds(2);

    public static readonly TimeSpan BaselineEpoch = TimeSpan.FromSeconds(10);

    private readonly TimeProvider _timeProvider;
    private readonly long _windowTicks;
    private readonly long _epochTicks;
    private readonly double _allowanceTicks;

    // Written only by the completion that closed a window (guarded by _updating); read by anyone.
    private int _limit;
    private long _baselineTicks;
    private long _increases;
    private long _decreases;

    // The open window, fed by sampled completions.
    private long _windowStart;
    private long _sampleTicks;
    private long _sampleCount;
    private int _peakInFlight;
    private int _updating;

    // The baseline's two epochs: the lowest window mean in the current one and in the one before.
    private long _epochStart;
    private double _epochMin = double.PositiveInfinity;
    private double _previousEpochMin = double.PositiveInfinity;

    /// <summary>An adaptive limit between <paramref name="floor"/> and <paramref name="ceiling"/>, starting at the ceiling.</summary>
    public AdaptiveInFlightLimit(int floor, int ceiling, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(floor, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(ceiling, floor);
        Floor = floor;
        Ceiling = ceiling;
        _timeProvider = timeProvider;
        _limit = ceiling;
        _windowTicks = ToTicks(Window);
        _epochTicks = ToTicks(BaselineEpoch);
        _allowanceTicks = ToTicks(QueueDelayAllowance);
        _windowStart = timeProvider.GetTimestamp();
        _epochStart = _windowStart;
    }

    public int Floor { get; }

    public int Ceiling { get; }

    /// <summary>Commands that may be in flight now.</summary>
    public int Limit => Volatile.Read(ref _limit);

    /// <summary>The no-load latency the limit compares against; null until a window has been measured.</summary>
    public TimeSpan? Baseline
    {
        get
        {
            var ticks = Volatile.Read(ref _baselineTicks);
            return ticks == 0 ? null : TimeSpan.FromSeconds((double)ticks / _timeProvider.TimestampFrequency);
        }
    }

    /// <summary>Times the limit went up, since the pool started.</summary>
    public long Increases => Interlocked.Read(ref _increases);

    /// <summary>Times the limit went down, since the pool started.</summary>
    public long Decreases => Interlocked.Read(ref _decreases);

    /// <summary>A timestamp for a sampled command.</summary>
    public long StartSample() => Math.Max(1, _timeProvider.GetTimestamp());

    /// <summary>
    /// Records a sampled command that completed successfully, started at <paramref name="start"/> with
    /// <paramref name="inFlight"/> commands in flight; true when it closed a window and the limit went up.
    /// </summary>
    public bool Complete(long start, int inFlight)
    {
        var now = _timeProvider.GetTimestamp();
        Interlocked.Add(ref _sampleTicks, Math.Max(0, now - start));
        var count = Interlocked.Increment(ref _sampleCount);
        var peak = Volatile.Read(ref _peakInFlight);
        while (inFlight > peak && Interlocked.CompareExchange(ref _peakInFlight, inFlight, peak) is var seen && seen != peak)
        {
            peak = seen;
        }

        if (count < MinSamples || now - Volatile.Read(ref _windowStart) < _windowTicks || Interlocked.Exchange(ref _updating, 1) != 0)
        {
            return false;
        }

        try
        {
            return CloseWindow(now);
        }
        finally
        {
            Volatile.Write(ref _updating, 0);
        }
    }

    private bool CloseWindow(long now)
    {
        // Samples that land between these exchanges go to the next window: sampling is statistical.
        var count = Interlocked.Exchange(ref _sampleCount, 0);
        var ticks = Interlocked.Exchange(ref _sampleTicks, 0);
        var peak = Interlocked.Exchange(ref _peakInFlight, 0);
        Volatile.Write(ref _windowStart, now);
        if (count == 0)
        {
            return false;
        }

        var mean = (double)ticks / count;
        var baseline = UpdateBaseline(now, mean);
        var target = Math.Max(baseline * Tolerance, baseline + _allowanceTicks);
        var limit = _limit;
        int next;
        if (mean > target)
        {
            next = (int)(limit * Math.Max(MinGradient, target / mean));
        }
        else if (peak * 2 >= limit)
        {
            next = limit + Math.Max(1, (int)Math.Sqrt(limit));
        }
        else
        {
            return false;
        }

        next = Math.Clamp(next, Floor, Ceiling);
        if (next == limit)
        {
            return false;
        }

        Volatile.Write(ref _limit, next);
        Interlocked.Increment(ref next > limit ? ref _increases : ref _decreases);
        return next > limit;
    }

    private double UpdateBaseline(long now, double mean)
    {
        if (now - _epochStart >= _epochTicks)
        {
            _previousEpochMin = _epochMin;
            _epochMin = double.PositiveInfinity;
            _epochStart = now;
        }

        _epochMin = Math.Min(_epochMin, mean);
        var baseline = Math.Min(_epochMin, _previousEpochMin);
        Volatile.Write(ref _baselineTicks, Math.Max(1, (long)baseline));
        return baseline;
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _timeProvider.TimestampFrequency);
}
