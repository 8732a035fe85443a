namespace RedisPoolKit;

/// <summary>
/// Keeps the idle lease sockets in shape on a <see cref="TimeProvider"/> timer: closes those past
/// <see cref="RedisPoolLeaseOptions.MaxLifetime"/>, disconnected, or idle past
/// <see cref="RedisPoolLeaseOptions.IdleTimeout"/> above <see cref="RedisPoolLeaseOptions.MinIdle"/>, and starts the
/// creator when MinIdle is not met. Leased sockets are never touched: an entry is reserved (taken out of idle under
/// the bag's lock) before it is closed, so eviction never races a borrower.
/// </summary>
internal sealed class LeaseHousekeeper : IAsyncDisposable
{
    private static readonly TimeSpan s_maxPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minPeriod = TimeSpan.FromMilliseconds(250);

    private readonly LeasePool _pool;
    private readonly LeaseBag _bag;
    private readonly LeaseCreator _creator;
    private readonly int _minIdle;
    private readonly long _idleTimeout;
    private readonly ITimer _timer;

    public LeaseHousekeeper(LeasePool pool, LeaseBag bag, LeaseCreator creator)
    {
        _pool = pool;
        _bag = bag;
        _creator = creator;
        var options = pool.Options;
        _minIdle = options.MinIdle;

        // A coarse clock lags by up to its resolution: evict that much later.
        var clock = pool.Clock;
        _idleTimeout = clock.ToTimestamps(options.IdleTimeout) + clock.ToTimestamps(clock.Resolution);

        var period = (options.IdleTimeout < options.MaxLifetime ? options.IdleTimeout : options.MaxLifetime) / 2;
        period = period < s_minPeriod ? s_minPeriod : period > s_maxPeriod ? s_maxPeriod : period;
        using (ExecutionContext.SuppressFlow())
        {
            _timer = pool.TimeProvider.CreateTimer(static state => ((LeaseHousekeeper)state!).Housekeep(), this, period, period);
        }
    }

    /// <summary>Closes idle sockets above <see cref="RedisPoolLeaseOptions.MinIdle"/>, oldest first.</summary>
    public Task TrimIdleAsync() => CloseIdleAboveAsync(_minIdle, "trimmed");

    /// <summary>Closes every idle socket, MinIdle included, and opens none for MinIdle until <see cref="ResumeMinIdle"/>.</summary>
    public Task CloseAllIdleAsync(string reason)
    {
        lock (_bag.Lock)
        {
            _bag.SuspendMinIdleLocked(true);
        }

        return CloseIdleAboveAsync(0, reason);
    }

    /// <summary>Lets the creator open sockets for MinIdle again, starting now.</summary>
    public void ResumeMinIdle()
    {
        bool startCreator;
        lock (_bag.Lock)
        {
            _bag.SuspendMinIdleLocked(false);
            startCreator = _bag.TryStartCreatingLocked();
        }

        if (startCreator)
        {
            _creator.Start();
        }
    }

    public ValueTask DisposeAsync() => _timer.DisposeAsync();

    private Task CloseIdleAboveAsync(int keep, string reason)
    {
        List<LeaseEntry>? victims = null;
        lock (_bag.Lock)
        {
            while (_bag.IdleLocked.Count > keep)
            {
                (victims ??= []).Add(_bag.RemoveIdleAtLocked(0));
            }
        }

        return victims is null ? Task.CompletedTask : Task.WhenAll(victims.Select(e => _pool.Closer.CloseAsync(e, reason, failure: false)));
    }

    private void Housekeep()
    {
        List<LeaseEntry>? victims = null;
        List<string>? reasons = null;
        bool startCreator;
        lock (_bag.Lock)
        {
            if (_bag.IsDisposedLocked)
            {
                return;
            }

            var now = _pool.Clock.Now;
            var idle = _bag.IdleLocked;
            for (var i = idle.Count - 1; i >= 0; i--)
            {
                var expired = idle[i].IsExpiredAt(now);
                if (expired || !idle[i].Connection.IsConnected)
                {
                    (victims ??= []).Add(_bag.RemoveIdleAtLocked(i));
                    (reasons ??= []).Add(expired ? "reached 'Leases.MaxLifetime'" : "disconnected while idle");
                }
            }

            while (idle.Count > _minIdle && now - idle[0].IdleSince >= _idleTimeout)
            {
                (victims ??= []).Add(_bag.RemoveIdleAtLocked(0));
                (reasons ??= []).Add("idle longer than 'Leases.IdleTimeout'");
            }

            startCreator = _bag.TryStartCreatingLocked();
        }

        for (var i = 0; i < (victims?.Count ?? 0); i++)
        {
            _ = _pool.Closer.CloseAsync(victims![i], reasons![i], failure: false);
        }

        if (startCreator)
        {
            _creator.Start();
        }
    }
}
