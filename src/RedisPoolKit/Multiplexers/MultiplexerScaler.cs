namespace RedisPoolKit;

/// <summary>
/// Decides how many multiplexers the pool shares. A member is added only on sustained saturation, one creation at a
/// time, within <c>MaxMultiplexers</c> and the budget; the newest member idle long enough is retired; a member that
/// failed for good is replaced, and <c>MinMultiplexers</c> are kept. The <see cref="MultiplexerSet"/> holds the
/// members and does the adding and retiring; this type only decides when.
/// </summary>
internal sealed class MultiplexerScaler : IDisposable
{
    /// <summary>
    /// Outstanding commands on the least busy member above which it counts as saturated. One multiplexer pipelines
    /// thousands of commands and a second one costs throughput on a small machine, so only a deep, sustained backlog
    /// justifies it (docs/Architecture.md).
    /// </summary>
    internal const int SaturationOutstanding = 256;

    /// <summary>How long a saturated member must stay saturated before another one is added.</summary>
    internal static readonly TimeSpan SaturationPeriod = TimeSpan.FromSeconds(1);

    /// <summary>An extra member idle (below 1/8 of the saturation mark) this long is retired.</summary>
    internal static readonly TimeSpan ScaleInIdle = TimeSpan.FromSeconds(60);

    internal static readonly TimeSpan MaintenanceInterval = TimeSpan.FromSeconds(1);

    private readonly MultiplexerSet _set;
    private readonly RedisPoolOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly CancellationToken _disposing;
    private readonly Lock _lock = new();
    private ITimer? _maintenance;
    private long _saturatedSince;
    private int _adding;

    public MultiplexerScaler(MultiplexerSet set, RedisPoolOptions options, TimeProvider timeProvider, CancellationToken disposing)
    {
        _set = set;
        _options = options;
        _timeProvider = timeProvider;
        _disposing = disposing;
    }

    /// <summary>Set while the server is at critical utilization or the breaker is open: no scale-up.</summary>
    public bool GrowthSuspended { get; set; }

    /// <summary>
    /// Called with the member a command was routed to, the least busy one: if even it is saturated, and has been for
    /// <see cref="SaturationPeriod"/>, one member is added in the background. Of several members, a disconnected one
    /// is picked only when none is connected: its backlog says the server is away, not that the set is too small.
    /// </summary>
    public void NoteLoad(MultiplexerEntry picked)
    {
        if (picked.Outstanding >= SaturationOutstanding && (_set.Count == 1 || picked.IsConnected))
        {
            OnSaturated();
        }
    }

    private void OnSaturated()
    {
        var now = _timeProvider.GetTimestamp();
        var since = Interlocked.Read(ref _saturatedSince);
        if (since == 0)
        {
            Interlocked.CompareExchange(ref _saturatedSince, now, 0);
            return;
        }

        if (_timeProvider.GetElapsedTime(since, now) < SaturationPeriod || GrowthSuspended || _set.Count >= _options.MaxMultiplexers)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _adding, 1, 0) == 0)
        {
            _ = ScaleUpAsync();
        }
    }

    private async Task ScaleUpAsync()
    {
        try
        {
            await _set.AddAsync($"the least busy multiplexer had {SaturationOutstanding}+ commands outstanding for {SaturationPeriod.TotalSeconds:F0} s", _options.MaxMultiplexers, _disposing).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisPoolException or ObjectDisposedException or OperationCanceledException)
        {
            // Budget, breaker or disposal said no: keep serving on the members we have.
        }
        finally
        {
            Interlocked.Exchange(ref _saturatedSince, 0);
            Volatile.Write(ref _adding, 0);
        }
    }

    /// <summary>Starts the maintenance tick once the set has its first member.</summary>
    public void Start()
    {
        if (_maintenance is not null || _disposing.IsCancellationRequested)
        {
            return;
        }

        lock (_lock)
        {
            if (_maintenance is null && !_disposing.IsCancellationRequested)
            {
                using (ExecutionContext.SuppressFlow())
                {
                    _maintenance = _timeProvider.CreateTimer(static s => ((MultiplexerScaler)s!).Maintain(), this, MaintenanceInterval, MaintenanceInterval);
                }
            }
        }
    }

    private void Maintain()
    {
        if (_disposing.IsCancellationRequested)
        {
            return;
        }

        var now = _timeProvider.GetTimestamp();
        var entries = _set.Entries;
        var saturated = entries.Count > 0;
        foreach (var entry in entries)
        {
            if (entry.Outstanding >= SaturationOutstanding / 8)
            {
                entry.LastBusyTimestamp = now;
            }

            saturated &= entry.Outstanding >= SaturationOutstanding;
        }

        if (!saturated)
        {
            Interlocked.Exchange(ref _saturatedSince, 0);
        }

        // A member disposed under us (it failed for good) is replaced; min members are kept.
        var broken = entries.FirstOrDefault(e => e.Connection.IsDisposed);
        if (broken is not null)
        {
            _ = _set.RetireAsync(broken, "its connection was closed");
        }
        else if (entries.Count > _options.MinMultiplexers)
        {
            var newest = entries[entries.Count - 1];
            if (_timeProvider.GetElapsedTime(newest.LastBusyTimestamp, now) >= ScaleInIdle)
            {
                _ = _set.RetireAsync(newest, $"idle for {ScaleInIdle.TotalSeconds:F0} s");
            }
        }

        if (entries.Count < _options.MinMultiplexers && Interlocked.CompareExchange(ref _adding, 1, 0) == 0)
        {
            _ = RefillAsync();
        }
    }

    private async Task RefillAsync()
    {
        try
        {
            while (_set.Count < _options.MinMultiplexers && !_disposing.IsCancellationRequested)
            {
                await _set.AddAsync("MinMultiplexers", _options.MinMultiplexers, _disposing).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisPoolException or ObjectDisposedException or OperationCanceledException)
        {
            // Retried on the next maintenance tick, under the breaker.
        }
        finally
        {
            Volatile.Write(ref _adding, 0);
        }
    }

    /// <summary>
    /// Retires up to <paramref name="count"/> members now, newest first, never below <c>MinMultiplexers</c>: the pool's
    /// effective budget was lowered. Commands already on them finish first. Returns how many were retired.
    /// </summary>
    public int ScaleIn(int count, string reason)
    {
        var entries = _set.Entries;
        var retired = 0;
        for (var i = entries.Count - 1; i >= 0 && retired < count && entries.Count - retired > _options.MinMultiplexers; i--)
        {
            _ = _set.RetireAsync(entries[i], reason);
            retired++;
        }

        return retired;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _maintenance?.Dispose();
        }
    }
}
