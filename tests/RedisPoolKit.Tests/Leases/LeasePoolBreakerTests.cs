using Microsoft.Extensions.Time.Testing;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Leases;

/// <summary>The lease pool while the max-clients breaker refuses new sockets (the connector throws its refusal).</summary>
public class LeasePoolBreakerTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();
    private readonly RedisPoolCircuitOpenException _open = new("circuit open", TimeSpan.FromSeconds(5), null);

    [Fact]
    public async Task While_the_breaker_is_open_a_caller_needing_a_new_socket_fails_at_once_though_a_lease_is_held()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        using var held = await pool.AcquireAsync();
        _connector.Failure = _open;

        // No time passes on the pool's clock: only the refusal itself can answer the caller.
        var wait = pool.AcquireAsync().AsTask();
        await WaitUntil(() => wait.IsCompleted, "the caller to be answered before any of AcquireTimeout passes");

        Assert.Same(_open, await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => wait));
        Assert.Equal(0, pool.Waiters);
        Assert.Equal(1, pool.Used);
        Assert.Equal(1, pool.Sockets);
        Assert.Equal(0, pool.RejectedTimeout);
    }

    [Fact]
    public async Task While_the_breaker_is_open_callers_a_new_socket_would_serve_fail_and_the_rest_wait_for_a_return()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 2; o.MaxWaiters = 5; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        var held = await pool.AcquireAsync();
        _connector.Gated = true;

        // One free slot: the first caller waits for the socket being opened, the two after it for a lease to come back.
        var first = pool.AcquireAsync().AsTask();
        var second = pool.AcquireAsync().AsTask();
        var third = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.PendingGates == 1, "the connect for the free slot");
        _connector.Failure = _open;
        _connector.OpenOneGate();

        // The slot will not be opened: as many callers as it would have served get the refusal, newest first.
        await WaitUntil(() => third.IsCompleted, "the caller beyond what returns can serve is answered");
        Assert.Same(_open, await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => third));
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);
        Assert.Equal(2, pool.Waiters);

        held.Dispose();
        using var lease = await first;
        Assert.False(second.IsCompleted, "a return serves the callers in arrival order");
        lease.Dispose();
        (await second).Dispose();
        Assert.Equal(1, pool.Sockets);
    }

    [Fact]
    public async Task A_lease_released_while_a_new_socket_is_refused_serves_the_waiting_caller_at_once()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        var held = await pool.AcquireAsync();
        var socket = held.Socket();
        _connector.Gated = true;
        var wait = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.PendingGates == 1, "the connect for the waiting caller");

        held.Dispose();
        using var lease = await wait;
        Assert.Same(socket, lease.Socket());

        _connector.Failure = _open;
        _connector.OpenOneGate();
        await WaitUntil(() => pool.Sockets == 1, "the refused connect to give its slot back");
        Assert.Equal(0, pool.Waiters);
    }

    [Fact]
    public async Task When_the_breaker_opens_a_creator_backing_off_tries_again_at_once_and_the_caller_gets_the_refusal()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        using var held = await pool.AcquireAsync();
        _connector.Failure = new TimeoutException("the server is slow to accept");
        var wait = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.Attempts == 2, "the first failed connect, then the creator backs off");

        _connector.Failure = _open;
        await pool.OnCircuitStateChanged(RedisPoolCircuitState.Open);

        // The backoff's 100 ms never pass on the pool's clock: the breaker's opening cut it short.
        await WaitUntil(() => wait.IsCompleted, "the caller to get the breaker's refusal");
        Assert.Same(_open, await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => wait));
        Assert.Equal(0, pool.Waiters);
    }

    [Fact]
    public async Task When_the_breaker_opens_every_idle_socket_closes_and_MinIdle_is_refilled_only_once_it_closes()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.MinIdle = 2; o.IdleTimeout = TimeSpan.FromSeconds(10); });
        _time.Advance(TimeSpan.FromSeconds(5));
        await WaitUntil(() => pool.Idle == 2, "MinIdle sockets");
        var idleSockets = _connector.Created.ToList();
        using var held = await pool.AcquireAsync();
        Assert.Equal(1, pool.Idle);
        await WaitUntil(() => pool.Idle == 1 && pool.Sockets == 2, "the lease taken from idle");

        await pool.OnCircuitStateChanged(RedisPoolCircuitState.Open);

        Assert.Equal(0, pool.Idle);
        Assert.Equal(1, pool.Sockets);
        Assert.False(held.Socket().IsDisposed, "a held lease keeps its socket");
        Assert.Single(idleSockets, s => s.IsDisposed);

        // Housekeeping runs while the breaker is open and half-open: MinIdle opens nothing the breaker would refuse.
        var attempts = _connector.Attempts;
        _time.Advance(TimeSpan.FromSeconds(30));
        await pool.OnCircuitStateChanged(RedisPoolCircuitState.HalfOpen);
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(attempts, _connector.Attempts);

        await pool.OnCircuitStateChanged(RedisPoolCircuitState.Closed);
        await WaitUntil(() => pool.Idle == 2, "MinIdle refilled once the breaker closed");
        Assert.Equal(3, pool.Sockets);
    }

    [Fact]
    public async Task While_the_breaker_is_open_a_later_caller_never_costs_a_caller_already_told_to_wait_its_place()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 3; o.MaxWaiters = 5; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        var held = await pool.AcquireAsync();
        _connector.Gated = true;

        // Two free slots: the first two callers wait for sockets, the two after them for a lease to come back.
        var first = pool.AcquireAsync().AsTask();
        var second = pool.AcquireAsync().AsTask();
        var third = pool.AcquireAsync().AsTask();
        var fourth = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.PendingGates == 1, "the connect for a free slot");
        _connector.Failure = _open;
        _connector.Gated = false;
        _connector.OpenOneGate();
        await WaitUntil(() => third.IsCompleted && fourth.IsCompleted, "the two callers the free slots would have served are refused");
        Assert.Equal(2, pool.Waiters);

        // A caller arriving now needs a new socket and is refused; the two told to wait keep waiting.
        var late = pool.AcquireAsync().AsTask();
        await WaitUntil(() => late.IsCompleted, "the late caller to get the refusal");
        Assert.Same(_open, await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => late));
        Assert.False(second.IsCompleted, "a caller told to wait for a return is not refused because another came later");
        Assert.False(first.IsCompleted);
        Assert.Equal(2, pool.Waiters);

        held.Dispose();
        using (await first)
        {
            Assert.False(second.IsCompleted, "a return serves the callers in arrival order");
        }

        (await second).Dispose();
        Assert.Equal(1, pool.Sockets);
    }

    [Fact]
    public async Task A_refusal_that_crosses_the_breaker_closing_does_not_leave_a_waiting_caller_without_a_creator()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 3; o.MaxWaiters = 5; o.AcquireTimeout = TimeSpan.FromSeconds(3); });
        using var held = await pool.AcquireAsync();
        _connector.Gated = true;
        var first = pool.AcquireAsync().AsTask();
        var second = pool.AcquireAsync().AsTask();
        var third = pool.AcquireAsync().AsTask();
        await WaitUntil(() => _connector.PendingGates == 1, "the connect for a free slot");
        _connector.Failure = _open;
        _connector.Gated = false;
        _connector.OpenOneGate();
        await WaitUntil(() => second.IsCompleted && third.IsCompleted, "the callers the free slots would have served are refused");
        Assert.False(first.IsCompleted);

        // The next connect is refused while the breaker is half-open, and the breaker closes before the creator hears
        // of the refusal: the pool's handler finds the creator still running and starts none.
        _connector.BeforeFailure = () =>
        {
            _connector.BeforeFailure = null;
            _connector.Failure = null;
            pool.OnCircuitStateChanged(RedisPoolCircuitState.Closed).GetAwaiter().GetResult();
        };
        var late = pool.AcquireAsync().AsTask();

        // No time passes on the pool's clock: neither AcquireTimeout nor housekeeping can end the wait.
        await WaitUntil(() => first.IsCompleted && late.IsCompleted, "both callers to be answered once the breaker closed");
        using var firstLease = await first;
        using var lateLease = await late;
        Assert.Equal(3, pool.Sockets);
    }
}
