namespace RedisPoolKit;

/// <summary>
/// Leak detection for one lease: a one-shot timer that logs the acquirer's stack when the lease is held past
/// <see cref="RedisPoolLeaseOptions.LeakDetectionThreshold"/>. Allocated only when that option is set, so leases
/// without it carry none of it.
/// </summary>
internal sealed class LeakWatch
{
    private const int None = 0;
    private const int Reported = 1;
    private const int Returned = 2;

    private readonly TimeSpan _threshold;
    private int _state;
    private ITimer? _timer;

    private LeakWatch(LeaseEntry entry, long leaseId, long acquiredTimestamp, string? acquirerStack, TimeSpan threshold)
    {
        Entry = entry;
        LeaseId = leaseId;
        AcquiredTimestamp = acquiredTimestamp;
        AcquirerStack = acquirerStack;
        _threshold = threshold;
    }

    public LeaseEntry Entry { get; }

    public long LeaseId { get; }

    public long AcquiredTimestamp { get; }

    public string? AcquirerStack { get; }

    /// <summary>Starts watching the lease <paramref name="leaseId"/> of <paramref name="entry"/>, acquired at <paramref name="now"/>.</summary>
    public static LeakWatch Start(LeaseEntry entry, long leaseId, long now, string? acquirerStack, TimeSpan threshold, TimeProvider timeProvider)
    {
        var watch = new LeakWatch(entry, leaseId, now, acquirerStack, threshold);

        // Set before the timer can fire, and with no AsyncLocal of the acquirer captured by the timer.
        using (ExecutionContext.SuppressFlow())
        {
            watch._timer = timeProvider.CreateTimer(static state => ((LeakWatch)state!).Report(), watch, threshold, Timeout.InfiniteTimeSpan);
        }

        return watch;
    }

    /// <summary>Ends the watch (the lease came back, or the pool closed its socket); true when it had been reported as a leak.</summary>
    public bool Stop()
    {
        _timer?.Dispose();
        return Interlocked.Exchange(ref _state, Returned) == Reported;
    }

    private void Report()
    {
        if (Interlocked.CompareExchange(ref _state, Reported, None) != None)
        {
            return;
        }

        var pool = Entry.Pool;
        pool.Metrics.RecordLeakSuspected();
        Log.LeaseLeakSuspected(
            pool.Logger,
            pool.PoolName,
            LeaseId,
            Entry.Connection.Name,
            pool.Clock.ElapsedSince(AcquiredTimestamp).TotalMilliseconds,
            _threshold.TotalMilliseconds,
            AcquirerStack ?? "(not captured)");
    }
}
