using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Leases;

public class LeasePoolFaultTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();

    [Fact]
    public async Task Forced_disposal_stops_the_leak_timers_of_leases_never_returned()
    {
        var logger = new FakeLogger();
        var pool = CreatePool(_time, _connector, o => o.LeakDetectionThreshold = TimeSpan.FromMinutes(1), logger, shutdownGracePeriod: TimeSpan.FromSeconds(5));
        var neverReturned = await pool.AcquireAsync();
        var disposing = pool.DisposeAsync().AsTask();
        _time.Advance(TimeSpan.FromSeconds(6));
        await disposing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(neverReturned.Socket().IsDisposed, "The held socket is closed after ShutdownGracePeriod.");

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);
        neverReturned.Dispose();
    }

    [Fact]
    public async Task A_wait_that_fails_for_any_reason_leaves_no_waiter_to_swallow_a_socket()
    {
        // The validator caps AcquireTimeout; past the cap Task.WaitAsync throws ArgumentOutOfRangeException.
        RedisPoolLeaseOptions? options = null;
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 1; options = o; });
        var held = await pool.AcquireAsync();
        options!.AcquireTimeout = TimeSpan.FromDays(60);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pool.AcquireAsync().AsTask());
        Assert.Equal(0, pool.Waiters);

        held.Dispose();
        Assert.Equal(0, pool.Used);
        Assert.Equal(1, pool.Idle);
        using var next = await pool.AcquireAsync();
        Assert.Single(_connector.Created);
    }

    [Fact]
    public async Task MaxWaiters_zero_leases_every_free_slot_and_rejects_only_past_MaxLeases()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 2; o.MaxWaiters = 0; });
        _connector.Gated = true;
        var first = pool.AcquireAsync().AsTask();
        var second = pool.AcquireAsync().AsTask();
        Assert.Equal(2, pool.Waiters);

        // Both slots are spoken for by callers waiting on sockets being opened: nothing is left to wait for.
        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => pool.AcquireAsync().AsTask());
        Assert.Equal(RedisPoolExhaustedReason.WaitersFull, ex.Reason);
        Assert.Contains("2 callers already wait, 2 of them for sockets being opened", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Leases.MaxWaiters' (0)", ex.Message, StringComparison.Ordinal);

        await WaitUntil(() => _connector.PendingGates == 1, "the first connect");
        _connector.OpenOneGate();
        using var a = await first;
        await WaitUntil(() => _connector.PendingGates == 1, "the second connect");
        _connector.OpenOneGate();
        using var b = await second;

        ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => pool.AcquireAsync().AsTask());
        Assert.Equal(RedisPoolExhaustedReason.WaitersFull, ex.Reason);
        Assert.Contains("0 callers already wait, 0 of them for sockets being opened", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, pool.RejectedWaitersFull);
    }

    [Fact]
    public async Task A_failed_connect_is_retried_while_waiters_remain_and_slots_are_free()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.AcquireTimeout = TimeSpan.FromSeconds(5); });
        using var held = await pool.AcquireAsync();
        _connector.Failure = new TimeoutException("blip");
        var wait = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.Attempts == 2, "the failed connect");
        _connector.Failure = null;

        // Fake time stops short of AcquireTimeout, so only a retry on the creator's backoff can serve the waiter; how far
        // it had to advance depends on how soon a loaded machine runs the pool's continuations, so it is reported, not asserted.
        var advanced = await AdvanceUntil(() => wait.IsCompleted, TimeSpan.FromSeconds(4));
        Assert.True(wait.IsCompleted, $"not served after {advanced.TotalMilliseconds} ms of fake time, short of AcquireTimeout 5 s");
        using var lease = await wait;
        Assert.Equal(3, _connector.Attempts);
    }

    [Fact]
    public async Task When_the_budget_refuses_a_socket_callers_beyond_MaxWaiters_get_the_refusal_at_once()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.MaxWaiters = 1; o.AcquireTimeout = TimeSpan.FromSeconds(5); });
        using var held = await pool.AcquireAsync();
        var full = new RedisPoolExhaustedException(RedisPoolExhaustedReason.BudgetExhausted, "budget full");
        _connector.Failure = full;

        // Both are let in on the promise of a socket to open; the budget refuses it, so only MaxWaiters (1) may wait on.
        // The connect is held until both wait: otherwise a loaded machine may refuse the first caller's connect before
        // the second arrives, and the second's own connect is a second attempt, not a retry.
        _connector.Gated = true;
        var first = pool.AcquireAsync().AsTask();
        var second = pool.AcquireAsync().AsTask();
        await WaitUntil(() => pool.Waiters == 2 && _connector.PendingGates == 1, "both callers to wait on one connect");
        _connector.Gated = false;
        _connector.OpenOneGate();
        await WaitUntil(() => second.IsCompleted, "the caller beyond MaxWaiters is answered");

        var refusal = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => second);
        Assert.Same(full, refusal);
        Assert.False(first.IsCompleted);
        Assert.Equal(1, pool.Waiters);
        Assert.Equal(1, _connector.Attempts - 1); // no retries counting refusals: a return serves the one left

        held.Dispose();
        using var lease = await first;
    }

    [Fact]
    public async Task A_lease_timeout_while_connects_fail_names_the_failure_not_MaxLeases()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.AcquireTimeout = TimeSpan.FromSeconds(5); });
        using var held = await pool.AcquireAsync();
        var refused = new InvalidOperationException("connect to 127.0.0.1:6379 refused\nsecond line");
        _connector.Failure = refused;
        var wait = pool.AcquireAsync().AsTask();

        await AdvanceUntil(() => wait.IsCompleted, TimeSpan.FromSeconds(6));
        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => wait);

        Assert.Equal(RedisPoolExhaustedReason.LeaseTimeout, ex.Reason);
        Assert.Contains("3 of 'Leases.MaxLeases' (4) slots not leased: opening lease sockets is failing (InvalidOperationException: connect to 127.0.0.1:6379 refused)", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("second line", ex.Message, StringComparison.Ordinal);
        Assert.Same(refused, ex.InnerException);
        // Retried on a 100 ms .. 1 s backoff, not hammered: about 8 attempts in 5 s. Fewer when a loaded machine runs the
        // pool's continuations late (fake time moves on meanwhile); never more.
        Assert.InRange(_connector.Attempts, 3, 10);
        Assert.Equal(0, pool.Waiters);
    }

    [Fact]
    public async Task Validating_stale_idle_sockets_stays_within_AcquireTimeout()
    {
        var pings = new PingGate(_time);
        await using var pool = new LeasePool(
            new RedisPoolLeaseOptions { MaxLeases = 4, AcquireTimeout = TimeSpan.FromSeconds(3), ValidateAfterIdle = TimeSpan.FromSeconds(30), IdleTimeout = TimeSpan.FromHours(1) },
            "test",
            (i, _) => ValueTask.FromResult<ILeaseConnection>(new PartitionedConnection(i, pings)),
            _ => Task.FromResult(true),
            () => "4 of 8 sockets in use",
            TimeSpan.Zero,
            _time,
            NullLogger.Instance,
            new RedisPoolMetrics());
        var leases = new List<RedisLease>();
        for (var i = 0; i < 4; i++)
        {
            leases.Add(await pool.AcquireAsync());
        }

        leases.ForEach(l => l.Dispose());
        _time.Advance(TimeSpan.FromSeconds(31));

        // A partition: IsConnected stays true and each PING hangs until its own 5 s (ConnectTimeout) runs out.
        pings.Blackholed = true;
        var acquire = pool.AcquireAsync().AsTask();
        // Fake time goes no further than AcquireTimeout: the caller must be answered there, before any PING's own 5 s runs
        // out. Waiting for the answer in real time keeps a loaded machine's slow continuations from moving fake time on.
        var advanced = await AdvanceUntil(() => acquire.IsCompleted, TimeSpan.FromSeconds(3));
        await WaitUntil(() => acquire.IsCompleted, "the caller to be answered at AcquireTimeout");

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => acquire);
        Assert.Equal(RedisPoolExhaustedReason.LeaseTimeout, ex.Reason);
        Assert.Contains("'Leases.AcquireTimeout' (00:00:03): idle sockets, idle longer than 'Leases.ValidateAfterIdle' (00:00:30), did not answer PING in the time left", ex.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(3), advanced);
        Assert.Equal(1, pings.Started);
        await WaitUntil(() => pool.Sockets == 3, "the unanswered socket to be closed as broken");
        Assert.Equal(1, pool.RejectedTimeout);
    }

    [Fact]
    public async Task A_caller_cancelling_during_validation_gets_its_cancellation_not_a_timeout()
    {
        var pings = new PingGate(_time);
        await using var pool = new LeasePool(
            new RedisPoolLeaseOptions { MaxLeases = 1, AcquireTimeout = TimeSpan.FromSeconds(3), ValidateAfterIdle = TimeSpan.FromSeconds(30) },
            "test",
            (i, _) => ValueTask.FromResult<ILeaseConnection>(new PartitionedConnection(i, pings)),
            _ => Task.FromResult(true),
            () => "1 of 8 sockets in use",
            TimeSpan.Zero,
            _time,
            NullLogger.Instance,
            new RedisPoolMetrics());
        (await pool.AcquireAsync()).Dispose();
        _time.Advance(TimeSpan.FromSeconds(31));
        pings.Blackholed = true;

        using var cts = new CancellationTokenSource();
        var acquire = pool.AcquireAsync(cts.Token).AsTask();
        await WaitUntil(() => pings.Started == 1, "the PING");
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => acquire);
        Assert.Equal(0, pool.RejectedTimeout);
    }

    /// <summary>Advances fake time in 50 ms steps, letting the pool's background work run between them, until <paramref name="done"/> or <paramref name="limit"/>.</summary>
    private async Task<TimeSpan> AdvanceUntil(Func<bool> done, TimeSpan limit)
    {
        var advanced = TimeSpan.Zero;
        while (!done() && advanced < limit)
        {
            _time.Advance(TimeSpan.FromMilliseconds(50));
            advanced += TimeSpan.FromMilliseconds(50);
            var settle = Stopwatch.StartNew();
            while (!done() && settle.ElapsedMilliseconds < 20)
            {
                await Task.Yield();
            }
        }

        return advanced;
    }

    private sealed class PingGate(TimeProvider time)
    {
        private int _started;

        public volatile bool Blackholed;

        public int Started => Volatile.Read(ref _started);

        public async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
        {
            if (!Blackholed)
            {
                return true;
            }

            Interlocked.Increment(ref _started);
            await Task.Delay(TimeSpan.FromSeconds(5), time, cancellationToken);
            return false;
        }
    }

    private sealed class PartitionedConnection(int index, PingGate gate) : ILeaseConnection
    {
        public IDatabase Database => throw new NotSupportedException();

        public string Name => $"svc:inst:test:lease{index}";

        public long ClientId => 100 + index;

        public bool IsConnected => true;

        public bool HasPendingReplies => false;

        public ValueTask<bool> PingAsync(CancellationToken cancellationToken) => gate.PingAsync(cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
