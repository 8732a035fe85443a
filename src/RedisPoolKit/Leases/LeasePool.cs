using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// The exclusive sockets behind <see cref="RedisLease"/>: at most <see cref="RedisPoolLeaseOptions.MaxLeases"/>,
/// waiters served first come first served, one creator at a time, idle eviction and max lifetime on a
/// <see cref="TimeProvider"/> timer, validation after idle, leak detection, bounded disposal.
/// </summary>
/// <remarks>
/// <para>
/// One lock guards a small stack of idle entries and a linked list of waiters: every decision about who gets
/// an entry (borrower, waiter, evictor, disposal) is taken under it, so a slot is never lost or handed twice.
/// Idle entries exist only while nobody waits, so a newcomer never overtakes a waiter.
/// </para>
/// <para>
/// The warm, uncontended acquire + release is the hot path (docs/Performance.md): the lock twice, one clock read
/// on each side, no hashing (the entry's state and a counter say what is leased), and one 32-byte handle.
/// </para>
/// </remarks>
internal sealed class LeasePool : IAsyncDisposable
{
    /// <summary>HikariCP's variance: lifetimes are shortened by up to this fraction so a fleet does not reconnect together.</summary>
    internal const double LifetimeJitter = 0.025;

    private static readonly TimeSpan s_maxHousekeepingPeriod = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_minHousekeepingPeriod = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan s_forcedCloseBound = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_firstRetryBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_maxRetryBackoff = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private readonly RedisPoolLeaseOptions _options;
    private readonly LeaseConnector _connect;
    private readonly Func<long, Task<bool>> _unblock;
    private readonly Func<string> _describeBudget;
    private readonly TimeSpan _shutdownGracePeriod;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly RedisPoolMetrics _metrics;
    private readonly ITimer _housekeeping;
    private readonly CancellationTokenSource _disposing = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The hot path compares timestamps, not TimeSpans: each conversion is a division.
    private readonly LeaseClock _clock;
    private readonly long _validateAfterIdle;
    private readonly long _idleTimeout;
    private readonly TimeSpan? _leakThreshold;

    // Ordered by the time each entry became idle: borrowers take the newest, eviction the oldest.
    private readonly List<LeaseEntry> _idle;
    private readonly LinkedList<LeaseWaiter> _waiters = new();
    private readonly bool[] _indexInUse;

    // Every entry by its index until its socket is closed: held entries are found here by their state.
    private readonly LeaseEntry?[] _entries;

    // Sockets open, being opened or being closed: a slot is free only once its socket is gone.
    private int _sockets;
    private int _used;
    private bool _creating;
    private bool _disposed;
    private long _tickets;
    private long _handOffs;
    private long _leaseIds;
    private long _rejectedTimeout;
    private long _rejectedWaitersFull;
    private Exception? _lastCreateFailure;

    public LeasePool(
        RedisPoolLeaseOptions options,
        string poolName,
        LeaseConnector connect,
        Func<long, Task<bool>> unblock,
        Func<string> describeBudget,
        TimeSpan shutdownGracePeriod,
        TimeProvider timeProvider,
        ILogger logger,
        RedisPoolMetrics metrics)
    {
        _options = options;
        PoolName = poolName;
        _connect = connect;
        _unblock = unblock;
        _describeBudget = describeBudget;
        _shutdownGracePeriod = shutdownGracePeriod;
        _timeProvider = timeProvider;
        _logger = logger;
        _metrics = metrics;
        _idle = new List<LeaseEntry>(options.MaxLeases);
        _indexInUse = new bool[options.MaxLeases];
        _entries = new LeaseEntry?[options.MaxLeases];
        _clock = new LeaseClock(timeProvider);

        // A coarse clock lags by up to its resolution: validate that much sooner, evict that much later.
        var resolution = _clock.ToTimestamps(_clock.Resolution);
        _validateAfterIdle = _clock.ToTimestamps(options.ValidateAfterIdle) - resolution;
        _idleTimeout = _clock.ToTimestamps(options.IdleTimeout) + resolution;
        _leakThreshold = options.LeakDetectionThreshold;

        var period = Min(options.IdleTimeout, options.MaxLifetime) / 2;
        period = period < s_minHousekeepingPeriod ? s_minHousekeepingPeriod : Min(period, s_maxHousekeepingPeriod);
        using (ExecutionContext.SuppressFlow())
        {
            _housekeeping = timeProvider.CreateTimer(static state => ((LeasePool)state!).Housekeep(), this, period, period);
        }
    }

    public string PoolName { get; }

    public RedisPoolLeaseOptions Options => _options;

    public TimeProvider TimeProvider => _timeProvider;

    public ILogger Logger => _logger;

    /// <summary>Lease sockets open, being opened or being closed; never above <see cref="RedisPoolLeaseOptions.MaxLeases"/>.</summary>
    public int Sockets { get { lock (_lock) { return _sockets; } } }

    public int Idle { get { lock (_lock) { return _idle.Count; } } }

    public int Used { get { lock (_lock) { return _used; } } }

    public int Waiters { get { lock (_lock) { return _waiters.Count; } } }

    public long RejectedTimeout => Interlocked.Read(ref _rejectedTimeout);

    public long RejectedWaitersFull => Interlocked.Read(ref _rejectedWaitersFull);

    /// <summary>Sends <c>CLIENT UNBLOCK</c> for a lease socket over another socket of the pool.</summary>
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
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            entry = _waiters.Count == 0 ? TakeIdleLocked(started) : null;
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
                if (await ValidateAsync(entry, started, cancellationToken).ConfigureAwait(false))
                {
                    var now = _clock.Now;
                    return Lease(entry, now, _clock.Elapsed(started, now), ticket: 0, handOff: 0, acquirerStack);
                }

                entry = null;

                // Each failed PING may have taken up to ConnectTimeout: another stale socket must not stretch the
                // caller's wait past AcquireTimeout.
                if (_clock.ElapsedSince(started) >= _options.AcquireTimeout)
                {
                    throw LeaseTimeout(ValidationTimeoutMessage());
                }
            }

            LeaseWaiter waiter;
            bool startCreator;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_waiters.Count == 0)
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
                var toOpen = Math.Max(0, _options.MaxLeases - _used - _idle.Count);
                if (_waiters.Count >= _options.MaxWaiters + toOpen)
                {
                    _rejectedWaitersFull++;
                    var message = $"Pool '{PoolName}' rejected a lease request at once: {_waiters.Count} callers already wait, {Math.Min(toOpen, _waiters.Count)} of them for sockets being opened and the rest up to the limit 'Leases.MaxWaiters' ({_options.MaxWaiters}) for leases to come back; {CountsLocked()}. Raise 'Leases.MaxWaiters', 'Leases.MaxLeases' or 'MaxConnections', or hold leases for less time.";
                    _metrics.RecordRejected(RedisPoolExhaustedReason.WaitersFull);
                    throw new RedisPoolExhaustedException(RedisPoolExhaustedReason.WaitersFull, message, _lastCreateFailure);
                }

                waiter = new LeaseWaiter(++_tickets);
                waiter.Node = _waiters.AddLast(waiter);
                startCreator = TryStartCreatingLocked();
            }

            if (startCreator)
            {
                StartCreator();
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
                ? await waiter.Task.WaitAsync(remaining, _timeProvider, cancellationToken).ConfigureAwait(false)
                : throw new TimeoutException();
            return (entry, waiter.HandOff);
        }
        catch (Exception ex)
        {
            // Any failure of the wait, not only a timeout or cancellation (a timer that rejects its period, say), must
            // take the waiter out of the queue: a socket handed to a waiter nobody awaits is a slot lost for good.
            bool removed;
            string? message = null;
            lock (_lock)
            {
                removed = waiter.Node!.List is not null;
                if (removed)
                {
                    if (ex is TimeoutException)
                    {
                        message = LeaseTimeoutMessageLocked();
                    }

                    _waiters.Remove(waiter.Node);
                }
            }

            if (!removed)
            {
                // An entry (or a failure) was handed over as the wait ended: the slot is ours to use or to give back.
                var entry = await waiter.Task.ConfigureAwait(false);
                if (ex is OperationCanceledException)
                {
                    Return(entry, broken: false, reason: null);
                    throw;
                }

                return (entry, waiter.HandOff);
            }

            if (message is not null)
            {
                throw LeaseTimeout(message);
            }

            throw;
        }
    }

    private RedisPoolExhaustedException LeaseTimeout(string message)
    {
        _metrics.RecordTimeout(RedisPoolExhaustedReason.LeaseTimeout);
        _metrics.RecordRejected(RedisPoolExhaustedReason.LeaseTimeout);
        return new RedisPoolExhaustedException(RedisPoolExhaustedReason.LeaseTimeout, message, _lastCreateFailure);
    }

    private string ValidationTimeoutMessage()
    {
        lock (_lock)
        {
            return $"{TimedOutLocked()}: idle sockets, idle longer than 'Leases.ValidateAfterIdle' ({RedisPoolOptionsValidator.Format(_options.ValidateAfterIdle)}), did not answer PING in the time left and were closed; {CountsLocked()}. Check the network and server health, or raise 'Leases.AcquireTimeout'.";
        }
    }

    private string LeaseTimeoutMessageLocked()
    {
        // The last connect failed (a success clears it) and not every slot is leased: the wait was for a socket that
        // could not be opened, not for MaxLeases.
        if (_lastCreateFailure is { } failure && _used + _idle.Count < _options.MaxLeases)
        {
            return $"{TimedOutLocked()} with {_options.MaxLeases - _used - _idle.Count} of 'Leases.MaxLeases' ({_options.MaxLeases}) slots not leased: opening lease sockets is failing ({ExceptionText.Brief(failure)}); {CountsLocked()}. Fix what the inner exception reports (server, network, breaker), or raise 'Leases.AcquireTimeout' to ride out longer outages.";
        }

        return $"{TimedOutLocked()}: {CountsLocked()}. Raise 'Leases.MaxLeases' (currently {_options.MaxLeases}), 'Leases.AcquireTimeout' or 'MaxConnections', or hold leases for less time.";
    }

    /// <summary>Counts one lease wait that ran out of AcquireTimeout and opens the message that says so.</summary>
    private string TimedOutLocked()
    {
        _rejectedTimeout++;
        return $"Pool '{PoolName}' could not lease a connection within 'Leases.AcquireTimeout' ({RedisPoolOptionsValidator.Format(_options.AcquireTimeout)})";
    }

    /// <summary>PINGs an idle socket within the caller's time left of <see cref="RedisPoolLeaseOptions.AcquireTimeout"/>; a socket that fails goes back as broken.</summary>
    private async ValueTask<bool> ValidateAsync(LeaseEntry entry, long started, CancellationToken cancellationToken)
    {
        var remaining = _options.AcquireTimeout - _clock.ElapsedSince(started);
        using var deadline = new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        bool alive;
        try
        {
            alive = await entry.Connection.PingAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            Return(entry, broken: true, reason: $"no PONG within the 'Leases.AcquireTimeout' ({RedisPoolOptionsValidator.Format(_options.AcquireTimeout)}) left to the caller");
            throw LeaseTimeout(ValidationTimeoutMessage());
        }
        catch (OperationCanceledException)
        {
            Return(entry, broken: true, reason: "PING interrupted by cancellation");
            throw;
        }

        if (!alive)
        {
            Return(entry, broken: true, reason: $"no PONG after {RedisPoolOptionsValidator.Format(_options.ValidateAfterIdle)} idle ('Leases.ValidateAfterIdle')");
        }

        return alive;
    }

    /// <summary>Makes the handle for an entry reserved under the lock (<see cref="MarkLeasedLocked"/>); only its holder touches the entry now.</summary>
    private RedisLease Lease(LeaseEntry entry, long now, TimeSpan waited, long ticket, long handOff, string? acquirerStack)
    {
        _metrics.RecordLeaseWait(waited);
        var id = entry.LeaseId;
        entry.LeasedAt = now;
        entry.WaitTicket = ticket;
        entry.HandOff = handOff;
        entry.BrokenReason = null;
        if (_leakThreshold is { } threshold)
        {
            var watch = new LeakWatch(entry, id, now, acquirerStack);
            entry.Leak = watch;
            using (ExecutionContext.SuppressFlow())
            {
                watch.Timer = _timeProvider.CreateTimer(static state => ((LeakWatch)state!).Entry.Pool.OnLeakSuspected((LeakWatch)state), watch, threshold, Timeout.InfiniteTimeSpan);
            }
        }

        return new RedisLease(entry, id);
    }

    private void OnLeakSuspected(LeakWatch watch)
    {
        if (Interlocked.CompareExchange(ref watch.State, LeakWatch.Reported, LeakWatch.None) != LeakWatch.None)
        {
            return;
        }

        _metrics.RecordLeakSuspected();
        Log.LeaseLeakSuspected(
            _logger,
            PoolName,
            watch.LeaseId,
            watch.Entry.Connection.Name,
            _clock.ElapsedSince(watch.AcquiredTimestamp).TotalMilliseconds,
            _leakThreshold.GetValueOrDefault().TotalMilliseconds,
            watch.AcquirerStack ?? "(not captured)");
    }

    /// <summary>Called by the one <see cref="RedisLease.Dispose"/> that cleared <see cref="LeaseEntry.LeaseId"/>.</summary>
    internal void Release(LeaseEntry entry, long leaseId, bool broken, string? reason)
    {
        var now = _clock.Now;
        var held = _clock.Elapsed(entry.LeasedAt, now);
        _metrics.RecordLeaseUse(held);
        if (entry.Leak is { } watch)
        {
            entry.Leak = null;
            if (watch.Stop())
            {
                Log.LeaseLeakReturned(_logger, PoolName, leaseId, entry.Connection.Name, held.TotalMilliseconds);
            }
        }

        Return(entry, broken, reason, now);
    }

    private void Return(LeaseEntry entry, bool broken, string? reason) => Return(entry, broken, reason, _clock.Now);

    private void Return(LeaseEntry entry, bool broken, string? reason, long now)
    {
        LeaseWaiter? waiter = null;
        var close = false;
        lock (_lock)
        {
            if (entry.State != LeaseEntryState.Leased)
            {
                // Closed by a forced disposal while it was leased.
                return;
            }

            // Already 0 when a lease's Dispose brings it back; not when the pool returns a slot no handle was made for.
            Volatile.Write(ref entry.LeaseId, 0);
            if (_disposed || broken || IsExpired(entry, now))
            {
                entry.State = LeaseEntryState.Closing;
                _used--;
                close = true;
                reason ??= _disposed ? "pool disposed" : "reached 'Leases.MaxLifetime'";
            }
            else if (_waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                waiter = first.Value;
                waiter.HandOff = ++_handOffs;
                MarkLeasedLocked(entry, wasLeased: true);
            }
            else
            {
                entry.State = LeaseEntryState.Idle;
                _used--;
                entry.IdleSince = now;
                _idle.Add(entry);
            }
        }

        if (close)
        {
            _ = CloseAsync(entry, reason!, failure: broken);
        }

        waiter?.TrySetResult(entry);
    }

    /// <summary>Closes idle sockets above <see cref="RedisPoolLeaseOptions.MinIdle"/>, oldest first (breaker open, critical utilization).</summary>
    public Task TrimIdleAsync()
    {
        List<LeaseEntry>? victims = null;
        lock (_lock)
        {
            while (_idle.Count > _options.MinIdle)
            {
                (victims ??= []).Add(RemoveIdleAtLocked(0));
            }
        }

        return victims is null ? Task.CompletedTask : Task.WhenAll(victims.Select(e => CloseAsync(e, "trimmed", failure: false)));
    }

    private void Housekeep()
    {
        List<LeaseEntry>? victims = null;
        List<string>? reasons = null;
        bool startCreator;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            var now = _clock.Now;
            for (var i = _idle.Count - 1; i >= 0; i--)
            {
                var expired = IsExpired(_idle[i], now);
                if (expired || !_idle[i].Connection.IsConnected)
                {
                    (victims ??= []).Add(RemoveIdleAtLocked(i));
                    (reasons ??= []).Add(expired ? "reached 'Leases.MaxLifetime'" : "disconnected while idle");
                }
            }

            while (_idle.Count > _options.MinIdle && now - _idle[0].IdleSince >= _idleTimeout)
            {
                (victims ??= []).Add(RemoveIdleAtLocked(0));
                (reasons ??= []).Add("idle longer than 'Leases.IdleTimeout'");
            }

            startCreator = TryStartCreatingLocked();
        }

        for (var i = 0; i < (victims?.Count ?? 0); i++)
        {
            _ = CloseAsync(victims![i], reasons![i], failure: false);
        }

        if (startCreator)
        {
            StartCreator();
        }
    }

    private LeaseEntry? TakeIdleLocked(long now)
    {
        while (_idle.Count > 0)
        {
            var entry = RemoveIdleAtLocked(_idle.Count - 1);
            if (IsExpired(entry, now) || !entry.Connection.IsConnected)
            {
                CloseInBackground(entry, IsExpired(entry, now) ? "reached 'Leases.MaxLifetime'" : "disconnected while idle");
                continue;
            }

            MarkLeasedLocked(entry, wasLeased: false);
            return entry;
        }

        return null;
    }

    /// <summary>Reserves <paramref name="entry"/> for one new lease: the id that lease's handle will carry.</summary>
    private void MarkLeasedLocked(LeaseEntry entry, bool wasLeased)
    {
        entry.State = LeaseEntryState.Leased;
        if (!wasLeased)
        {
            _used++;
        }

        Volatile.Write(ref entry.LeaseId, ++_leaseIds);
    }

    // A method of its own: a lambda in TakeIdleLocked would allocate its closure on every acquire, used or not.
    private void CloseInBackground(LeaseEntry entry, string reason) => _ = Task.Run(() => CloseAsync(entry, reason, failure: false));

    /// <summary>Removing an entry from the idle list under the lock is the reservation: no borrower can see it any more.</summary>
    private LeaseEntry RemoveIdleAtLocked(int index)
    {
        var entry = _idle[index];
        _idle.RemoveAt(index);
        entry.State = LeaseEntryState.Closing;
        return entry;
    }

    private bool NeedsValidation(LeaseEntry entry, long now) => now - entry.IdleSince > _validateAfterIdle;

    private static bool IsExpired(LeaseEntry entry, long now) => now >= entry.ExpiresAt;

    private bool TryStartCreatingLocked()
    {
        if (_creating || !NeedsSocketLocked())
        {
            return false;
        }

        _creating = true;
        return true;
    }

    private bool NeedsSocketLocked() =>
        !_disposed && _sockets < _options.MaxLeases && (_waiters.Count > 0 || _idle.Count < _options.MinIdle);

    private void StartCreator()
    {
        using (ExecutionContext.SuppressFlow())
        {
            _ = Task.Run(CreateLoopAsync);
        }
    }

    /// <summary>The one creator (HikariCP's adder): sockets are opened one after another, however many callers wait.</summary>
    private async Task CreateLoopAsync()
    {
        var backoff = s_firstRetryBackoff;
        while (true)
        {
            int index;
            lock (_lock)
            {
                if (!NeedsSocketLocked())
                {
                    _creating = false;
                    return;
                }

                index = Array.IndexOf(_indexInUse, false);
                _indexInUse[index] = true;
                _sockets++;
            }

            var started = _clock.Now;
            ILeaseConnection connection;
            try
            {
                connection = await _connect(index, _disposing.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LeaseWaiter? failed = null;
                List<LeaseWaiter>? refused = null;
                var refusedByPool = ex is RedisPoolCircuitOpenException or RedisPoolExhaustedException { Reason: RedisPoolExhaustedReason.BudgetExhausted };
                CancellationToken disposing;
                lock (_lock)
                {
                    _sockets--;
                    _indexInUse[index] = false;
                    _lastCreateFailure = ex;
                    SignalIfDrainedLocked();

                    // Nothing will come back to serve the head waiter: the failure is its answer (fail fast while the
                    // breaker is open or the budget is spent).
                    if (!_disposed && _used == 0 && _waiters.First is { } first)
                    {
                        _waiters.RemoveFirst();
                        failed = first.Value;
                    }
                    else if (!_disposed && refusedByPool)
                    {
                        // The pool itself refused the socket, and retrying would only count refusals: waiters up to
                        // MaxWaiters wait for a lease to come back (a return restarts the creator); those let in
                        // beyond it for a socket that will not be opened get the refusal, newest first.
                        while (_waiters.Count > _options.MaxWaiters && _waiters.Last is { } last)
                        {
                            _waiters.RemoveLast();
                            (refused ??= []).Add(last.Value);
                        }

                        _creating = false;
                    }
                    else if (_disposed || _waiters.Count == 0 || _sockets >= _options.MaxLeases)
                    {
                        _creating = false;
                        return;
                    }

                    // Read under the lock: disposal disposes the source only after setting _disposed.
                    disposing = _disposing.Token;
                }

                if (failed is not null)
                {
                    failed.TrySetException(ex);
                    continue;
                }

                if (refusedByPool)
                {
                    refused?.ForEach(w => w.TrySetException(ex));
                    return;
                }

                // Leases are held, so waiters could wait for one to come back, but a slot is free: a blip must not
                // leave them waiting until a release or housekeeping restarts the creator. The breaker and the
                // budget still gate each attempt; the backoff keeps a dead server from being hammered.
                try
                {
                    await Task.Delay(backoff, _timeProvider, disposing).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    lock (_lock)
                    {
                        _creating = false;
                    }

                    return;
                }

                backoff = Min(backoff + backoff, s_maxRetryBackoff);
                continue;
            }

            backoff = s_firstRetryBackoff;

            var lifetime = JitteredLifetime(_options.MaxLifetime, Random.Shared.NextDouble());
            var entry = new LeaseEntry(this, connection, index, started, lifetime, started + _clock.ToTimestamps(lifetime));
            LeaseWaiter? waiter = null;
            var closeNow = false;
            lock (_lock)
            {
                _entries[index] = entry;
                _lastCreateFailure = null;
                if (_disposed)
                {
                    entry.State = LeaseEntryState.Closing;
                    closeNow = true;
                }
                else if (_waiters.First is { } first)
                {
                    _waiters.RemoveFirst();
                    waiter = first.Value;
                    waiter.HandOff = ++_handOffs;
                    MarkLeasedLocked(entry, wasLeased: false);
                }
                else
                {
                    entry.IdleSince = _clock.Now;
                    _idle.Add(entry);
                }
            }

            waiter?.TrySetResult(entry);
            if (closeNow)
            {
                await CloseAsync(entry, "pool disposed", failure: false).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The lifetime of a new socket: <paramref name="maxLifetime"/> shortened by up to <see cref="LifetimeJitter"/> (<paramref name="random"/> in [0, 1)).</summary>
    internal static TimeSpan JitteredLifetime(TimeSpan maxLifetime, double random) =>
        maxLifetime - (maxLifetime * (LifetimeJitter * random));

    private async Task CloseAsync(LeaseEntry entry, string reason, bool failure)
    {
        if (failure)
        {
            Log.LeaseSocketDiscarded(_logger, PoolName, entry.Connection.Name, reason);
        }
        else
        {
            Log.LeaseSocketRetired(_logger, PoolName, entry.Connection.Name, reason);
        }

        try
        {
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A socket that fails while closing is gone all the same; its slot must come back.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.LeaseCloseFailed(_logger, PoolName, entry.Connection.Name, ex);
        }
        finally
        {
            bool startCreator;
            lock (_lock)
            {
                entry.State = LeaseEntryState.Closed;
                _sockets--;
                _indexInUse[entry.Index] = false;
                _entries[entry.Index] = null;
                SignalIfDrainedLocked();
                startCreator = TryStartCreatingLocked();
            }

            if (startCreator)
            {
                StartCreator();
            }
        }
    }

    private void SignalIfDrainedLocked()
    {
        if (_disposed && _sockets == 0)
        {
            _allClosed.TrySetResult();
        }
    }

    private string CountsLocked() =>
        $"{_idle.Count} idle and {_used} used of 'Leases.MaxLeases' ({_options.MaxLeases}), {_waiters.Count} waiting, {_sockets - _idle.Count - _used} opening or closing; budget: {_describeBudget()} ('MaxConnections')";

    /// <summary>
    /// Fails waiters with <see cref="ObjectDisposedException"/>, closes idle sockets, lets leases come back for
    /// the shutdown grace period, then closes the ones still held.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        List<LeaseWaiter> waiters;
        List<LeaseEntry> idle;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            waiters = [.. _waiters];
            _waiters.Clear();
            idle = [];
            while (_idle.Count > 0)
            {
                idle.Add(RemoveIdleAtLocked(_idle.Count - 1));
            }

            SignalIfDrainedLocked();
        }

        await _housekeeping.DisposeAsync().ConfigureAwait(false);
        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (var waiter in waiters)
        {
            waiter.TrySetException(new ObjectDisposedException(nameof(LeasePool), $"Pool '{PoolName}' was disposed while waiting for a lease."));
        }

        foreach (var entry in idle)
        {
            _ = CloseAsync(entry, "pool disposed", failure: false);
        }

        var forced = 0;
        try
        {
            await _allClosed.Task.WaitAsync(_shutdownGracePeriod, _timeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            List<LeaseEntry> held;
            lock (_lock)
            {
                held = [.. _entries.Where(e => e?.State == LeaseEntryState.Leased).Select(e => e!)];
                _used = 0;
                foreach (var entry in held)
                {
                    entry.State = LeaseEntryState.Closing;
                }
            }

            // The holders may never call Dispose: their leak timers would outlive the pool and report a socket it closed.
            foreach (var entry in held)
            {
                if (entry.Leak is { } watch)
                {
                    entry.Leak = null;
                    watch.Stop();
                }
            }

            forced = held.Count;
            foreach (var entry in held)
            {
                _ = CloseAsync(entry, "still leased after 'ShutdownGracePeriod'", failure: false);
            }

            try
            {
                await _allClosed.Task.WaitAsync(s_forcedCloseBound, _timeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // A close that hangs past this bound is StackExchange.Redis's to finish; disposal stays bounded.
            }
        }

        Log.LeasePoolDisposed(_logger, PoolName, forced, _shutdownGracePeriod.TotalMilliseconds);
        _disposing.Dispose();
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private sealed class LeaseWaiter(long ticket) : TaskCompletionSource<LeaseEntry>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long Ticket { get; } = ticket;

        public LinkedListNode<LeaseWaiter>? Node { get; set; }

        public long HandOff { get; set; }
    }
}
