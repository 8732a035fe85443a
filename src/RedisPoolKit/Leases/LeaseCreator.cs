namespace RedisPoolKit;

/// <summary>
/// The one creator of lease sockets (HikariCP's adder): sockets are opened one after another, however many callers
/// wait, so a burst never becomes a connect flood. It runs while the bag needs a socket and stops when it does not.
/// </summary>
internal sealed class LeaseCreator : IDisposable
{
    /// <summary>HikariCP's variance: lifetimes are shortened by up to this fraction so a fleet does not reconnect together.</summary>
    internal const double LifetimeJitter = 0.025;

    private static readonly TimeSpan s_firstRetryBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_maxRetryBackoff = TimeSpan.FromSeconds(1);

    private readonly LeasePool _pool;
    private readonly LeaseBag _bag;
    private readonly LeaseConnector _connect;
    private readonly CancellationTokenSource _disposing = new();

    // Cuts of the backoff asked for so far, and the backoff in progress if any: see CutBackoff.
    private int _cuts;
    private CancellationTokenSource? _backoff;

    // Times the breaker closed: a refusal from a connect that began before the latest one is stale (see OnBreakerClosed).
    private int _closes;

    public LeaseCreator(LeasePool pool, LeaseBag bag, LeaseConnector connect)
    {
        _pool = pool;
        _bag = bag;
        _connect = connect;
    }

    private enum AfterFailure
    {
        /// <summary>The failure answered a waiter: try again for the next one at once.</summary>
        Next,

        /// <summary>Waiters remain and a slot is free: try again after the backoff.</summary>
        Retry,

        Stop,
    }

    /// <summary>Runs the creator on the thread pool; call it only after <see cref="LeaseBag.TryStartCreatingLocked"/> returned true.</summary>
    public void Start()
    {
        using (ExecutionContext.SuppressFlow())
        {
            _ = Task.Run(CreateLoopAsync);
        }
    }

    /// <summary>Cancels a connect or backoff in progress: the pool is being disposed.</summary>
    public Task CancelAsync() => _disposing.CancelAsync();

    public void Dispose() => _disposing.Dispose();

    /// <summary>
    /// Ends a retry backoff in progress, or the next one of a connect already running, at once: the breaker opened,
    /// so the next attempt meets its refusal, which answers the waiters instead of a backoff of up to a second.
    /// </summary>
    public void CutBackoff()
    {
        Interlocked.Increment(ref _cuts);
        try
        {
            Volatile.Read(ref _backoff)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The backoff ended meanwhile: the next attempt runs anyway.
        }
    }

    /// <summary>
    /// The breaker closed. A connect refused while it was half-open may report its refusal after this, when the pool
    /// found the creator still running and started none: that refusal is stale, and the creator tries again instead
    /// of refusing the callers or stopping with callers left waiting.
    /// </summary>
    public void OnBreakerClosed() => Interlocked.Increment(ref _closes);

    /// <summary>The lifetime of a new socket: <paramref name="maxLifetime"/> shortened by up to <see cref="LifetimeJitter"/> (<paramref name="random"/> in [0, 1)).</summary>
    internal static TimeSpan JitteredLifetime(TimeSpan maxLifetime, double random) =>
        maxLifetime - (maxLifetime * (LifetimeJitter * random));

    private async Task CreateLoopAsync()
    {
        var clock = _pool.Clock;
        var backoff = s_firstRetryBackoff;
        while (true)
        {
            int index;
            CancellationToken disposing;
            lock (_bag.Lock)
            {
                if (!_bag.NeedsSocketLocked())
                {
                    _bag.StopCreatingLocked();
                    return;
                }

                index = _bag.ReserveIndexLocked();

                // Read under the lock: disposal disposes the source only after the bag is disposed.
                disposing = _disposing.Token;
            }

            var started = clock.Now;
            var cuts = Volatile.Read(ref _cuts);
            var closes = Volatile.Read(ref _closes);
            ILeaseConnection connection;
            try
            {
                connection = await _connect(index, disposing).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var next = OnConnectFailed(index, ex, closes);
                if (next == AfterFailure.Stop)
                {
                    return;
                }

                if (next == AfterFailure.Retry)
                {
                    if (!await BackOffAsync(backoff, cuts, disposing).ConfigureAwait(false))
                    {
                        return;
                    }

                    backoff = backoff + backoff < s_maxRetryBackoff ? backoff + backoff : s_maxRetryBackoff;
                }

                continue;
            }

            backoff = s_firstRetryBackoff;
            var lifetime = JitteredLifetime(_pool.Options.MaxLifetime, Random.Shared.NextDouble());
            var entry = new LeaseEntry(_pool, connection, index, started, lifetime, started + clock.ToTimestamps(lifetime));
            bool placed;
            LeaseWaiter? waiter;
            lock (_bag.Lock)
            {
                placed = _bag.PlaceCreatedLocked(entry, clock.Now, out waiter);
            }

            waiter?.TrySetResult(entry);
            if (!placed)
            {
                await _pool.Closer.CloseAsync(entry, "pool disposed", failure: false).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Frees the failed socket's slot and decides who gets the failure as their answer and whether to try again.</summary>
    private AfterFailure OnConnectFailed(int index, Exception ex, int closesAtConnect)
    {
        LeaseWaiter? failed = null;
        List<LeaseWaiter>? refused = null;
        var circuitOpen = ex is RedisPoolCircuitOpenException;
        var budgetSpent = ex is RedisPoolExhaustedException { Reason: RedisPoolExhaustedReason.BudgetExhausted };
        AfterFailure next;
        lock (_bag.Lock)
        {
            _bag.ReleaseIndexLocked(index, ex);
            var disposed = _bag.IsDisposedLocked;

            if (!disposed && circuitOpen && Volatile.Read(ref _closes) != closesAtConnect)
            {
                // The breaker closed since this connect began: try again now (see OnBreakerClosed).
                next = AfterFailure.Next;
            }

            // Nothing will come back to serve the head waiter: the failure is its answer (fail fast while the
            // breaker is open or the budget is spent). A lease socket still closing frees a slot of the budget and
            // restarts the creator when it is gone (a lowered fleet share closes returned leases): waiters wait for it.
            else if (!disposed && _bag.UsedLocked == 0 && !(budgetSpent && _bag.CountsLocked().OpeningOrClosing > 0) && _bag.RemoveFirstWaiterLocked() is { } first)
            {
                failed = first;
                next = AfterFailure.Next;
            }
            else if (!disposed && circuitOpen)
            {
                // The breaker refuses every new socket until the server has room again, which may take far longer
                // than AcquireTimeout: as many callers as the free slots would have served get the refusal now,
                // newest first. The rest, within MaxWaiters, wait for a lease to come back as they would with every
                // slot leased, and a later caller's refusal never takes their place.
                refused = _bag.RefuseNewWaitersLocked(_bag.SlotsToOpenLocked());

                _bag.StopCreatingLocked();
                next = AfterFailure.Stop;
            }
            else if (!disposed && budgetSpent)
            {
                // The budget refused the socket, and retrying would only count refusals: waiters up to MaxWaiters
                // wait for a lease to come back (a return restarts the creator); those let in beyond it for a socket
                // that will not be opened get the refusal, newest first.
                while (_bag.WaitingLocked > _pool.Options.MaxWaiters && _bag.RemoveLastWaiterLocked() is { } last)
                {
                    (refused ??= []).Add(last);
                }

                _bag.StopCreatingLocked();
                next = AfterFailure.Stop;
            }
            else if (disposed || _bag.WaitingLocked == 0 || !_bag.HasFreeSlotLocked)
            {
                _bag.StopCreatingLocked();
                next = AfterFailure.Stop;
            }
            else
            {
                // Leases are held, so waiters could wait for one to come back, but a slot is free: a blip must not
                // leave them waiting until a release or housekeeping restarts the creator. The breaker and the
                // budget still gate each attempt; the backoff keeps a dead server from being hammered.
                next = AfterFailure.Retry;
            }
        }

        failed?.TrySetException(ex);
        refused?.ForEach(w => w.TrySetException(ex));
        return next;
    }

    /// <summary>Waits out the backoff unless it is cut (<see cref="CutBackoff"/>, since <paramref name="cuts"/> was read); false (the creator stopped) when the pool is disposed meanwhile.</summary>
    private async Task<bool> BackOffAsync(TimeSpan backoff, int cuts, CancellationToken disposing)
    {
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(disposing);

        // Published before the cuts are read again (a full fence): a cut either sees this source or is seen below.
        Interlocked.Exchange(ref _backoff, cut);
        try
        {
            if (Volatile.Read(ref _cuts) == cuts)
            {
                await Task.Delay(backoff, _pool.TimeProvider, cut.Token).ConfigureAwait(false);
            }

            return true;
        }
        catch (OperationCanceledException) when (!disposing.IsCancellationRequested)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            lock (_bag.Lock)
            {
                _bag.StopCreatingLocked();
            }

            return false;
        }
        finally
        {
            Interlocked.CompareExchange(ref _backoff, null, cut);
        }
    }
}
