using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// The exclusive sockets behind <see cref="RedisLease"/>: acquire and release. At most
/// <see cref="RedisPoolLeaseOptions.MaxLeases"/> sockets, waiters served first come first served, validation after
/// idle, bounded disposal. The state lives in a <see cref="LeaseBag"/>; the <see cref="LeaseCreator"/> opens
/// sockets, the <see cref="LeaseHousekeeper"/> evicts them and <see cref="LeakWatch"/> watches held leases.
/// </summary>
/// <remarks>
/// The warm, uncontended acquire + release is the hot path: the bag's lock twice, one clock read on each side, no
/// hashing (the entry's state and a counter say what is leased), and one small handle.
/// </remarks>
internal sealed partial class LeasePool : IAsyncDisposable
{
    private readonly RedisPoolLeaseOptions _options;
    private readonly Func<long, Task<bool>> _unblock;
    private readonly TimeSpan _shutdownGracePeriod;
    private readonly LeaseBag _bag;
    private readonly LeaseCreator _creator;
    private readonly LeaseHousekeeper _housekeeper;
    private readonly LeaseRejectionMessages _messages;
    private readonly LeaseValidator _validator;

    // The hot path compares timestamps, not TimeSpans: each conversion is a division.
    private readonly LeaseClock _clock;
    private readonly long _validateAfterIdle;
    private readonly TimeSpan? _leakThreshold;

    public LeasePool(
        RedisPoolLeaseOptions options,
        string poolName,
        LeaseConnector connect,
        Func<long, Task<bool>> unblock,
        Func<string> describeBudget,
        TimeSpan shutdownGracePeriod,
        TimeProvider timeProvider,
        ILogger logger,
        RedisPoolMetrics metrics,
        System.Net.EndPoint? node = null,
        ClusterLeases? cluster = null)
    {
        _options = options;
        Node = node;
        Cluster = cluster;
        PoolName = poolName;
        _unblock = unblock;
        _shutdownGracePeriod = shutdownGracePeriod;
        TimeProvider = timeProvider;
        Logger = logger;
        Metrics = metrics;
        _clock = new LeaseClock(timeProvider);
        _messages = new LeaseRejectionMessages(poolName, options, describeBudget);
        _validator = new LeaseValidator(this);

        // A coarse clock lags by up to its resolution: validate that much sooner.
        _validateAfterIdle = _clock.ToTimestamps(options.ValidateAfterIdle) - _clock.ToTimestamps(_clock.Resolution);
        _leakThreshold = options.LeakDetectionThreshold;

        _bag = new LeaseBag(options.MaxLeases, options.MinIdle);
        _creator = new LeaseCreator(this, _bag, connect);
        Closer = new LeaseCloser(this, _bag, _creator);
        _housekeeper = new LeaseHousekeeper(this, _bag, _creator);
    }

    public string PoolName { get; }

    /// <summary>The cluster master every socket of this pool is connected to; <see langword="null"/> outside a cluster.</summary>
    public System.Net.EndPoint? Node { get; }

    /// <summary>The lease pools of the cluster's other masters, for redirects; <see langword="null"/> outside a cluster.</summary>
    public ClusterLeases? Cluster { get; }

    public RedisPoolLeaseOptions Options => _options;

    public TimeProvider TimeProvider { get; }

    public ILogger Logger { get; }

    public RedisPoolMetrics Metrics { get; }

    public LeaseClock Clock => _clock;

    public LeaseCloser Closer { get; }

    /// <summary>Lease sockets open, being opened or being closed; never above <see cref="RedisPoolLeaseOptions.MaxLeases"/>.</summary>
    public int Sockets => _bag.Sockets;

    public int Idle => _bag.Idle;

    public int Used => _bag.Used;

    public int Waiters => _bag.Waiters;

    public long RejectedTimeout => _bag.RejectedTimeout;

    public long RejectedWaitersFull => _bag.RejectedWaitersFull;

    /// <summary>Sends <c>CLIENT UNBLOCK</c> for a lease socket over another socket of the pool, to the lease socket's own server.</summary>
    public Task<bool> UnblockAsync(long clientId) => _unblock(clientId);

    /// <summary>Leases a socket: an idle one at once, else waits (first come, first served) up to <see cref="RedisPoolLeaseOptions.AcquireTimeout"/>.</summary>
    public ValueTask<RedisLease> AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<RedisLease>(cancellationToken);
        }

        var started = _clock.Now;

        // Captured here, on the caller's own stack: after an await only the continuation would be visible.
        var acquirerStack = _leakThreshold is null ? null : new StackTrace(1, fNeedFileInfo: true).ToString();
        LeaseEntry? entry;
        lock (_bag.Lock)
        {
            ThrowIfDisposedLocked();
            entry = _bag.WaitingLocked == 0 ? TakeIdleLocked(started) : null;
        }

        if (entry is not null && !NeedsValidation(entry, started))
        {
            // Taken at once: the wait is the lock alone, recorded as 0 rather than paying a second clock read.
            return new ValueTask<RedisLease>(Lease(entry, now: started, waited: TimeSpan.Zero, ticket: 0, handOff: 0, acquirerStack));
        }

        return AcquireSlowAsync(entry, started, acquirerStack, cancellationToken);
    }

    private async ValueTask<RedisLease> AcquireSlowAsync(LeaseEntry? entry, long started, string? acquirerStack, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (entry is not null)
            {
                if (await _validator.ValidateAsync(entry, started, cancellationToken).ConfigureAwait(false))
                {
                    var now = _clock.Now;
                    return Lease(entry, now, _clock.Elapsed(started, now), ticket: 0, handOff: 0, acquirerStack);
                }

                entry = null;

                // Each failed PING may have taken up to ConnectTimeout: another stale socket must not stretch the
                // caller's wait past AcquireTimeout.
                if (_clock.ElapsedSince(started) >= _options.AcquireTimeout)
                {
                    throw ValidationTimeout();
                }
            }

            LeaseWaiter waiter;
            bool startCreator;
            lock (_bag.Lock)
            {
                ThrowIfDisposedLocked();
                if (_bag.WaitingLocked == 0)
                {
                    entry = TakeIdleLocked(_clock.Now);
                    if (entry is not null)
                    {
                        continue;
                    }
                }

                // A caller that a socket being opened (or still to be opened) will serve waits for that socket, not for
                // a lease to come back: MaxWaiters bounds only the rest, so MaxWaiters = 0 still leases while slots are
                // free. Idle is empty here (taken above, or nobody would wait), so every slot not leased is such a socket.
                var toOpen = _bag.SlotsToOpenLocked();
                if (_bag.WaitingLocked >= _options.MaxWaiters + toOpen)
                {
                    _bag.CountWaitersFullLocked();
                    var message = _messages.WaitersFull(_bag.CountsLocked(), toOpen);
                    Metrics.RecordRejected(RedisPoolExhaustedReason.WaitersFull);
                    throw new RedisPoolExhaustedException(RedisPoolExhaustedReason.WaitersFull, message, _bag.LastCreateFailure);
                }

                waiter = _bag.EnqueueWaiterLocked();
                startCreator = _bag.TryStartCreatingLocked();
            }

            if (startCreator)
            {
                _creator.Start();
            }

            var (handed, handOff) = await WaitAsync(waiter, started, cancellationToken).ConfigureAwait(false);
            var leasedAt = _clock.Now;
            return Lease(handed, leasedAt, _clock.Elapsed(started, leasedAt), waiter.Ticket, handOff, acquirerStack);
        }
    }

    private async ValueTask<(LeaseEntry Entry, long HandOff)> WaitAsync(LeaseWaiter waiter, long started, CancellationToken cancellationToken)
    {
        var remaining = _options.AcquireTimeout - _clock.ElapsedSince(started);
        try
        {
            var entry = remaining > TimeSpan.Zero
                ? await waiter.Task.WaitAsync(remaining, TimeProvider, cancellationToken).ConfigureAwait(false)
                : throw new TimeoutException();
            return (entry, waiter.HandOff);
        }
        catch (Exception ex)
        {
            // Any failure of the wait, not only a timeout or cancellation (a timer that rejects its period, say), must
            // take the waiter out of the queue: a socket handed to a waiter nobody awaits is a slot lost for good.
            bool removed;
            LeaseCounts counts = default;
            lock (_bag.Lock)
            {
                // The counts include this waiter: the message reports the queue it timed out in.
                counts = _bag.CountsLocked();
                removed = _bag.TryRemoveWaiterLocked(waiter);
                if (removed && ex is TimeoutException)
                {
                    _bag.CountTimeoutLocked();
                }
            }

            if (!removed)
            {
                // An entry (or a failure) was handed over as the wait ended: the slot is ours to use or to give back.
                var entry = await waiter.Task.ConfigureAwait(false);
                if (ex is OperationCanceledException)
                {
                    Return(entry, broken: false, reason: null, _clock.Now);
                    throw;
                }

                return (entry, waiter.HandOff);
            }

            if (ex is TimeoutException)
            {
                throw LeaseTimeout(_messages.LeaseTimeout(counts, _bag.LastCreateFailure));
            }

            throw;
        }
    }

    /// <summary>Counts a wait that ran out while stale idle sockets failed their <c>PING</c>, and makes its exception.</summary>
    internal RedisPoolExhaustedException ValidationTimeout()
    {
        LeaseCounts counts;
        lock (_bag.Lock)
        {
            _bag.CountTimeoutLocked();
            counts = _bag.CountsLocked();
        }

        return LeaseTimeout(_messages.ValidationTimeout(counts));
    }

    private RedisPoolExhaustedException LeaseTimeout(string message)
    {
        Metrics.RecordTimeout(RedisPoolExhaustedReason.LeaseTimeout);
        Metrics.RecordRejected(RedisPoolExhaustedReason.LeaseTimeout);
        return new RedisPoolExhaustedException(RedisPoolExhaustedReason.LeaseTimeout, message, _bag.LastCreateFailure);
    }

    /// <summary>Makes the handle for an entry reserved under the lock (<see cref="LeaseBag.MarkLeasedLocked"/>); only its holder touches the entry now.</summary>
    private RedisLease Lease(LeaseEntry entry, long now, TimeSpan waited, long ticket, long handOff, string? acquirerStack)
    {
        Metrics.RecordLeaseWait(waited);
        var id = entry.LeaseId;
        entry.LeasedAt = now;
        entry.WaitTicket = ticket;
        entry.HandOff = handOff;
        entry.BrokenReason = null;
        entry.BrokenByDesign = false;
        if (_leakThreshold is { } threshold)
        {
            entry.Leak = LeakWatch.Start(entry, id, now, acquirerStack, threshold, TimeProvider);
        }

        return new RedisLease(entry, id);
    }

    /// <summary>Called by the one <see cref="RedisLease.Dispose"/> that cleared <see cref="LeaseEntry.LeaseId"/>.</summary>
    internal void Release(LeaseEntry entry, long leaseId, bool broken, string? reason)
    {
        var now = _clock.Now;
        var held = _clock.Elapsed(entry.LeasedAt, now);
        Metrics.RecordLeaseUse(held);
        if (entry.Leak is { } watch)
        {
            entry.Leak = null;
            if (watch.Stop())
            {
                Log.LeaseLeakReturned(Logger, PoolName, leaseId, entry.Connection.Name, held.TotalMilliseconds);
            }
        }

        Return(entry, broken, reason, now);
    }

    /// <summary>Takes back a leased entry: closed when broken, expired or the pool is disposed, else handed to the first waiter or kept idle.</summary>
    internal void Return(LeaseEntry entry, bool broken, string? reason, long now)
    {
        LeaseWaiter? waiter = null;
        var close = false;
        lock (_bag.Lock)
        {
            if (entry.State != LeaseEntryState.Leased)
            {
                // Closed by a forced disposal while it was leased.
                return;
            }

            // Already 0 when a lease's Dispose brings it back; not when the pool returns a slot no handle was made for.
            Volatile.Write(ref entry.LeaseId, 0);
            var disposed = _bag.IsDisposedLocked;
            var retired = Volatile.Read(ref entry.RetiredReason);
            var shed = !disposed && !broken && retired is null && CloseOnReturn?.Invoke() == true;
            if (disposed || broken || retired is not null || entry.IsExpiredAt(now) || shed)
            {
                _bag.MarkClosingLocked(entry);
                close = true;
                reason ??= disposed ? "pool disposed" : retired ?? (shed ? "the pool is above its fleet share" : "reached 'Leases.MaxLifetime'");
            }
            else
            {
                waiter = _bag.HandOffOrIdleLocked(entry, now, wasLeased: true);
            }
        }

        if (close)
        {
            _ = Closer.CloseAsync(entry, reason!, failure: broken && !Volatile.Read(ref entry.BrokenByDesign));
        }

        waiter?.TrySetResult(entry);
    }

    /// <summary>
    /// Asked on every return: true closes the returned socket instead of keeping it (the pool holds more sockets than
    /// its effective budget, so the slot goes back rather than to the next waiter). Null: always keep.
    /// </summary>
    public Func<bool>? CloseOnReturn { get; set; }

    /// <summary>Closes up to <paramref name="count"/> idle sockets, oldest first, MinIdle included; returns how many.</summary>
    public int CloseIdle(int count, string reason)
    {
        List<LeaseEntry>? victims = null;
        lock (_bag.Lock)
        {
            while ((victims?.Count ?? 0) < count && _bag.IdleLocked.Count > 0)
            {
                (victims ??= []).Add(_bag.RemoveIdleAtLocked(0));
            }
        }

        victims?.ForEach(entry => Closer.CloseInBackground(entry, reason));
        return victims?.Count ?? 0;
    }

    /// <summary>The budget grew: callers waiting because it refused a socket get one now rather than at the next return.</summary>
    public void OnBudgetRaised()
    {
        bool startCreator;
        lock (_bag.Lock)
        {
            startCreator = _bag.TryStartCreatingLocked();
        }

        if (startCreator)
        {
            _creator.Start();
        }
    }

    /// <summary>
    /// Takes every socket connected to <paramref name="node"/> out of use: idle ones are closed now, a held one fails
    /// its lease's next command with <paramref name="reason"/> and is closed when it comes back. New sockets open
    /// wherever the connection factory points by then.
    /// </summary>
    /// <returns>How many sockets were idle (closed) and held (retired).</returns>
    public (int Idle, int Held) RetireNode(string node, string reason)
    {
        List<LeaseEntry> idle = [];
        var held = 0;
        lock (_bag.Lock)
        {
            for (var i = _bag.IdleLocked.Count - 1; i >= 0; i--)
            {
                if (_bag.IdleLocked[i].Connection.Node == node)
                {
                    idle.Add(_bag.RemoveIdleAtLocked(i));
                }
            }

            foreach (var entry in _bag.LeasedLocked())
            {
                if (entry.Connection.Node == node && Interlocked.CompareExchange(ref entry.RetiredReason, reason, null) is null)
                {
                    held++;
                }
            }
        }

        foreach (var entry in idle)
        {
            Closer.CloseInBackground(entry, reason);
        }

        return (idle.Count, held);
    }

    /// <summary>Closes idle sockets above <see cref="RedisPoolLeaseOptions.MinIdle"/>, oldest first (critical utilization).</summary>
    public Task TrimIdleAsync() => _housekeeper.TrimIdleAsync();

    /// <summary>
    /// Follows the max-clients breaker. When it opens, every idle socket is closed, MinIdle included: the server is
    /// full, and the slots they free let the breaker's half-open probe through. MinIdle is not refilled until the
    /// breaker closes (the breaker would refuse those sockets anyway). Leases held keep their sockets. A connect retry
    /// backing off tries again at once, so the callers it would serve get the breaker's refusal without delay.
    /// </summary>
    public Task OnCircuitStateChanged(RedisPoolCircuitState state)
    {
        switch (state)
        {
            case RedisPoolCircuitState.Open:
                _creator.CutBackoff();
                return _housekeeper.CloseAllIdleAsync("breaker open: the server is full");
            case RedisPoolCircuitState.Closed:
                _creator.OnBreakerClosed();
                _housekeeper.ResumeMinIdle();
                break;
        }

        return Task.CompletedTask;
    }

    /// <summary>Takes the newest usable idle entry for a borrower; stale ones met on the way are closed.</summary>
    private LeaseEntry? TakeIdleLocked(long now)
    {
        while (_bag.IdleLocked.Count > 0)
        {
            var entry = _bag.RemoveIdleAtLocked(_bag.IdleLocked.Count - 1);
            if (entry.IsExpiredAt(now) || !entry.Connection.IsConnected)
            {
                Closer.CloseInBackground(entry, entry.IsExpiredAt(now) ? "reached 'Leases.MaxLifetime'" : "disconnected while idle");
                continue;
            }

            _bag.MarkLeasedLocked(entry, wasLeased: false);
            return entry;
        }

        return null;
    }

    private bool NeedsValidation(LeaseEntry entry, long now) => now - entry.IdleSince > _validateAfterIdle;

    private void ThrowIfDisposedLocked() => ObjectDisposedException.ThrowIf(_bag.IsDisposedLocked, this);
}
