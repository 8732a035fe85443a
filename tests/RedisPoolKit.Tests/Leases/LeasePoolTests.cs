using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using RedisPoolKit.Tests.Generators;
using StackExchange.Redis;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Leases;

public class LeasePoolTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();

    [Fact]
    public async Task Returned_socket_is_reused_without_a_new_connect()
    {
        await using var pool = CreatePool(_time, _connector);
        var first = await pool.AcquireAsync();
        var socket = first.Socket();
        await first.DisposeAsync();

        var second = pool.AcquireAsync();
        Assert.True(second.IsCompletedSuccessfully, "An idle socket is handed out synchronously.");
        Assert.Same(socket, (await second).Socket());
        Assert.Single(_connector.Created);
    }

    [Fact]
    public async Task Idle_eviction_waits_for_IdleTimeout_and_keeps_MinIdle()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 4; o.MinIdle = 1; o.IdleTimeout = TimeSpan.FromMinutes(1); });
        var leases = new[] { await pool.AcquireAsync(), await pool.AcquireAsync(), await pool.AcquireAsync() };
        foreach (var lease in leases)
        {
            lease.Dispose();
        }

        // MinIdle keeps one spare beyond the three that were leased.
        await WaitUntil(() => pool.Idle == 4, "the returned sockets and the MinIdle spare");
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(4, pool.Idle);
        Assert.DoesNotContain(_connector.Created, c => c.IsDisposed);

        _time.Advance(TimeSpan.FromMinutes(5));
        await WaitUntil(() => pool.Sockets == 1, "eviction down to MinIdle");
        Assert.Equal(1, pool.Idle);
        Assert.Equal(3, _connector.Created.Count(c => c.IsDisposed));
    }

    [Fact]
    public async Task Eviction_and_lifetime_never_close_a_leased_socket()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.IdleTimeout = TimeSpan.FromMinutes(1); o.MaxLifetime = TimeSpan.FromMinutes(30); });
        var held = await pool.AcquireAsync();
        var idle = await pool.AcquireAsync();
        var idleSocket = idle.Socket();
        idle.Dispose();

        _time.Advance(TimeSpan.FromHours(1));
        await WaitUntil(() => idleSocket.IsDisposed, "the idle socket to be evicted");
        Assert.False(held.Socket().IsDisposed, "A leased socket is never evicted, however old.");
        Assert.Equal(1, pool.Used);

        var heldSocket = held.Socket();
        held.Dispose();
        await WaitUntil(() => heldSocket.IsDisposed, "the expired socket to close on return");
        Assert.Equal(0, pool.Idle);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(0.999999)]
    public void Lifetime_jitter_shortens_by_at_most_2_5_percent(double random)
    {
        var max = TimeSpan.FromMinutes(30);
        var lifetime = LeaseCreator.JitteredLifetime(max, random);
        Assert.InRange(lifetime, max * 0.975, max);
    }

    [Fact]
    public async Task Sockets_live_between_97_5_and_100_percent_of_MaxLifetime()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 16; o.MaxLifetime = TimeSpan.FromMinutes(40); o.IdleTimeout = TimeSpan.FromHours(2); });
        var leases = new List<RedisLease>();
        for (var i = 0; i < 16; i++)
        {
            leases.Add(await pool.AcquireAsync());
        }

        var lifetimes = leases.Select(l => l.Entry.Lifetime).ToList();
        Assert.All(lifetimes, l => Assert.InRange(l, TimeSpan.FromMinutes(39), TimeSpan.FromMinutes(40)));
        Assert.True(lifetimes.Distinct().Count() > 1, "Each socket draws its own jitter.");
        leases.ForEach(l => l.Dispose());

        _time.Advance(TimeSpan.FromMinutes(39) - TimeSpan.FromSeconds(1));
        Assert.Equal(16, pool.Idle);
        _time.Advance(TimeSpan.FromMinutes(2));
        await WaitUntil(() => pool.Sockets == 0, "every socket past its lifetime to close");
    }

    [Fact]
    public async Task Waiters_are_served_in_arrival_order()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        var held = await pool.AcquireAsync();
        var waits = Enumerable.Range(0, 5).Select(_ => pool.AcquireAsync().AsTask()).ToList();
        Assert.Equal(5, pool.Waiters);

        var current = held;
        long? previousTicket = null;
        for (var i = 0; i < waits.Count; i++)
        {
            current.Dispose();
            current = await waits[i];
            Assert.All(waits.Skip(i + 1), w => Assert.False(w.IsCompleted, "Later waiters are not served before earlier ones."));
            if (previousTicket is { } previous)
            {
                Assert.Equal(previous + 1, current.WaitTicket);
            }

            previousTicket = current.WaitTicket;
        }

        current.Dispose();
    }

    [Fact]
    public async Task Waiters_are_served_in_arrival_order_under_concurrency()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 2; o.MaxWaiters = 1000; });
        var served = new System.Collections.Concurrent.ConcurrentBag<(long Ticket, long HandOff)>();
        var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                var lease = await pool.AcquireAsync();
                if (lease.WaitTicket != 0)
                {
                    served.Add((lease.WaitTicket, lease.HandOff));
                }

                await Task.Yield();
                lease.Dispose();
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));

        var tickets = served.OrderBy(s => s.HandOff).Select(s => s.Ticket).ToList();
        Assert.NotEmpty(tickets);
        Assert.Equal(tickets.Order(), tickets);
        Assert.Equal(2, pool.Sockets);
    }

    [Fact]
    public async Task A_lease_timeout_is_counted_as_a_timeout_and_as_a_rejection()
    {
        const string PoolName = "lease-timeout-metrics";
        using var metrics = new RedisPoolMetrics(PoolName, meterFactory: null, statistics: null, new RedisPoolOptions());
        using var timeouts = new MetricCollector<long>(metrics.Meter, RedisPoolInstrumentNames.ConnectionTimeouts);
        using var rejected = new MetricCollector<long>(metrics.Meter, RedisPoolInstrumentNames.Rejected);
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 1; o.AcquireTimeout = TimeSpan.FromSeconds(2); }, metrics: metrics);
        using var held = await pool.AcquireAsync();
        var wait = pool.AcquireAsync().AsTask();

        _time.Advance(TimeSpan.FromSeconds(2.1));

        await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => wait);
        Assert.Single(timeouts.GetMeasurementSnapshot(), m => Equals(m.Tags[RedisPoolInstrumentNames.PoolNameTag], PoolName) && Equals(m.Tags[RedisPoolInstrumentNames.ReasonTag], "lease_timeout"));
        Assert.Single(rejected.GetMeasurementSnapshot(), m => Equals(m.Tags[RedisPoolInstrumentNames.PoolNameTag], PoolName) && Equals(m.Tags[RedisPoolInstrumentNames.ReasonTag], "lease_timeout"));
    }

    [Fact]
    public async Task Lease_wait_times_out_after_AcquireTimeout_naming_counts_and_options()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 1; o.AcquireTimeout = TimeSpan.FromSeconds(2); });
        using var held = await pool.AcquireAsync();
        var wait = pool.AcquireAsync().AsTask();

        _time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(wait.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(0.2));

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => wait);
        Assert.Equal(RedisPoolExhaustedReason.LeaseTimeout, ex.Reason);
        Assert.Contains("0 idle and 1 used", ex.Message, StringComparison.Ordinal);
        Assert.Contains("1 waiting", ex.Message, StringComparison.Ordinal);
        Assert.Contains("3 of 8 sockets in use", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Leases.MaxLeases'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Leases.AcquireTimeout'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'MaxConnections'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, pool.RejectedTimeout);
        Assert.Equal(0, pool.Waiters);
    }

    [Fact]
    public async Task Past_MaxWaiters_a_caller_is_rejected_at_once()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 1; o.MaxWaiters = 2; });
        using var held = await pool.AcquireAsync();
        var waits = new[] { pool.AcquireAsync().AsTask(), pool.AcquireAsync().AsTask() };

        var third = pool.AcquireAsync().AsTask();
        Assert.True(third.IsFaulted, "The rejection does not wait.");
        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => third);
        Assert.Equal(RedisPoolExhaustedReason.WaitersFull, ex.Reason);
        Assert.Contains("'Leases.MaxWaiters' (2)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, pool.RejectedWaitersFull);
        Assert.All(waits, w => Assert.False(w.IsCompleted));
    }

    [Fact]
    public async Task Cancel_while_waiting_loses_no_slot()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        var held = await pool.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var wait = pool.AcquireAsync(cts.Token).AsTask();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        Assert.Equal(0, pool.Waiters);
        held.Dispose();
        Assert.Equal(1, pool.Idle);
        Assert.True(pool.AcquireAsync().IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Cancel_racing_a_return_loses_no_slot()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        for (var i = 0; i < 300; i++)
        {
            var held = await pool.AcquireAsync();
            using var cts = new CancellationTokenSource();
            var wait = pool.AcquireAsync(cts.Token).AsTask();
            var cancel = Task.Run(cts.Cancel);
            var release = Task.Run(held.Dispose);
            await Task.WhenAll(cancel, release);
            try
            {
                (await wait).Dispose();
            }
            catch (OperationCanceledException)
            {
            }

            await WaitUntil(() => pool.Idle == 1, $"the slot to come back (round {i})");
            Assert.Equal(1, pool.Sockets);
            Assert.Equal(0, pool.Used);
        }

        Assert.Single(_connector.Created);
    }

    [Fact]
    public async Task A_burst_opens_sockets_one_at_a_time()
    {
        _connector.Gated = true;
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 5);
        var waits = Enumerable.Range(0, 5).Select(_ => pool.AcquireAsync().AsTask()).ToList();

        for (var i = 0; i < 5; i++)
        {
            await WaitUntil(() => _connector.PendingGates == 1, $"connect {i} to start");
            Assert.Equal(1, _connector.MaxConcurrent);
            _connector.OpenOneGate();
            await waits[i];
        }

        Assert.Equal(1, _connector.MaxConcurrent);
        Assert.Equal(5, _connector.Created.Count);
        Assert.Equal(Enumerable.Range(0, 5), _connector.Created.Select(c => c.Index).Order());
    }

    [Fact]
    public async Task Leak_detection_warns_once_with_the_acquirer_stack_and_notes_the_return()
    {
        var logger = new FakeLogger();
        await using var pool = CreatePool(_time, _connector, o => o.LeakDetectionThreshold = TimeSpan.FromSeconds(10), logger);
        var lease = await AcquireFromALeakyPlace(pool);

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);
        _time.Advance(TimeSpan.FromSeconds(2));
        _time.Advance(TimeSpan.FromMinutes(5));

        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains($"lease {lease.Id}", warning.Message, StringComparison.Ordinal);
        Assert.Contains("(10000 ms)", warning.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(AcquireFromALeakyPlace), warning.Message, StringComparison.Ordinal);

        lease.Dispose();
        var returned = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 201);
        Assert.Equal(LogLevel.Information, returned.Level);
    }

    [Fact]
    public async Task Lease_returned_in_time_is_never_reported()
    {
        var logger = new FakeLogger();
        await using var pool = CreatePool(_time, _connector, o => o.LeakDetectionThreshold = TimeSpan.FromSeconds(10), logger);
        var lease = await pool.AcquireAsync();
        _time.Advance(TimeSpan.FromSeconds(5));
        lease.Dispose();
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id is 200 or 201);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<RedisLease> AcquireFromALeakyPlace(LeasePool pool) => await pool.AcquireAsync();

    [Fact]
    public async Task A_socket_idle_past_ValidateAfterIdle_is_pinged_and_replaced_when_dead()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.ValidateAfterIdle = TimeSpan.FromSeconds(30); o.IdleTimeout = TimeSpan.FromHours(1); });
        var lease = await pool.AcquireAsync();
        var socket = lease.Socket();
        lease.Dispose();

        _time.Advance(TimeSpan.FromSeconds(10));
        (await pool.AcquireAsync()).Dispose();
        Assert.Equal(0, socket.Pings);

        _time.Advance(TimeSpan.FromSeconds(31));
        socket.PingSucceeds = false;
        var fresh = await pool.AcquireAsync();
        Assert.Equal(1, socket.Pings);
        Assert.NotSame(socket, fresh.Socket());
        await WaitUntil(() => socket.IsDisposed, "the dead socket to close");
    }

    [Fact]
    public async Task A_socket_that_failed_during_the_lease_is_discarded()
    {
        await using var pool = CreatePool(_time, _connector);
        var lease = await pool.AcquireAsync();
        var socket = lease.Socket();
        socket.IsConnected = false;
        lease.Dispose();

        await WaitUntil(() => socket.IsDisposed && pool.Sockets == 0, "the failed socket to close");
        Assert.Equal(0, pool.Idle);
    }

    [Fact]
    public async Task A_socket_with_replies_pending_is_discarded()
    {
        await using var pool = CreatePool(_time, _connector);
        var lease = await pool.AcquireAsync();
        var socket = lease.Socket();
        socket.Database = RecordingProxy.Create<IDatabase>().Fake;
        _ = lease.Database.PingAsync();
        socket.HasPendingReplies = true;
        lease.Dispose();
        await WaitUntil(() => socket.IsDisposed, "the socket with a reply coming to close");
    }

    [Fact]
    public async Task Pending_replies_are_checked_only_when_the_lease_handed_out_its_Database()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        var lease = await pool.AcquireAsync();
        var socket = lease.Socket();
        socket.Database = RecordingProxy.Create<IDatabase>().Fake;
        lease.Dispose();
        Assert.Equal(0, socket.PendingChecks);

        var withDatabase = await pool.AcquireAsync();
        _ = withDatabase.Database;
        withDatabase.Dispose();
        Assert.Equal(1, socket.PendingChecks);

        // The next lease of the socket does not inherit the check from the earlier lease's Database.
        (await pool.AcquireAsync()).Dispose();
        Assert.Equal(1, socket.PendingChecks);
        Assert.Equal(1, pool.Idle);
    }

    [Fact]
    public async Task Creation_failure_with_nothing_leased_fails_the_waiter_fast()
    {
        _connector.Failure = new RedisPoolCircuitOpenException("open", TimeSpan.FromSeconds(5), null);
        await using var pool = CreatePool(_time, _connector);
        await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => pool.AcquireAsync().AsTask());
        Assert.Equal(0, pool.Sockets);
        Assert.Equal(0, pool.Waiters);

        _connector.Failure = null;
        (await pool.AcquireAsync()).Dispose();
        Assert.Equal(1, pool.Idle);
    }

    [Fact]
    public async Task MinIdle_is_filled_by_housekeeping()
    {
        await using var pool = CreatePool(_time, _connector, o => { o.MinIdle = 2; o.IdleTimeout = TimeSpan.FromSeconds(10); });
        _time.Advance(TimeSpan.FromSeconds(5));
        await WaitUntil(() => pool.Idle == 2, "MinIdle sockets");
        Assert.Equal(1, _connector.MaxConcurrent);
    }

    [Fact]
    public async Task TrimIdle_closes_idle_sockets_above_MinIdle()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MinIdle = 1);
        var leases = new[] { await pool.AcquireAsync(), await pool.AcquireAsync(), await pool.AcquireAsync() };
        leases[0].Dispose();
        leases[1].Dispose();

        await pool.TrimIdleAsync();
        Assert.Equal(1, pool.Idle);
        Assert.Equal(1, pool.Used);
        Assert.False(leases[2].Socket().IsDisposed);
        Assert.Equal(2, pool.Sockets);
    }

    [Fact]
    public async Task Lease_disposed_twice_is_harmless_and_then_throws_on_use()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        var lease = await pool.AcquireAsync();
        lease.Dispose();
        await lease.DisposeAsync();

        Assert.Equal(1, pool.Idle);
        Assert.Throws<ObjectDisposedException>(() => lease.Database);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => lease.BlockingLeftPopAsync(["q"], TimeSpan.FromSeconds(1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => lease.StreamReadBlockingAsync([new StreamPosition("s", "$")], null, TimeSpan.FromSeconds(1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => lease.WaitForReplicasAsync(1, TimeSpan.FromSeconds(1)));

        var next = await pool.AcquireAsync();
        Assert.Equal(0, pool.Idle);
        lease.Dispose();
        Assert.Equal(1, pool.Used);
        next.Dispose();
    }

    [Fact]
    public async Task A_stale_handle_neither_returns_nor_uses_the_next_holders_socket()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        var (inner, recorder) = RecordingProxy.Create<IDatabase>();
        var stale = await pool.AcquireAsync();
        var socket = stale.Socket();
        socket.Database = inner;
        var staleDatabase = stale.Database;
        stale.Dispose();

        var next = await pool.AcquireAsync();
        Assert.Same(socket, next.Socket());
        Assert.NotEqual(stale.Id, next.Id);

        stale.Dispose();
        await stale.DisposeAsync();
        Assert.Equal(1, pool.Used);
        Assert.Equal(0, pool.Idle);
        var waiter = pool.AcquireAsync().AsTask();
        Assert.False(waiter.IsCompleted, "The socket is still the next holder's: the stale Dispose gave nothing back.");

        Assert.Throws<ObjectDisposedException>(() => stale.Database);
        Assert.Throws<ObjectDisposedException>(() => staleDatabase.StringGet("k"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stale.BlockingLeftPopAsync(["q"], TimeSpan.FromSeconds(1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stale.WaitForReplicasAsync(1, TimeSpan.FromSeconds(1)));

        Assert.NotSame(staleDatabase, next.Database);
        Assert.Same(next.Database, next.Database);
        next.Database.Ping();
        Assert.Equal(["Ping"], recorder.Calls.Select(c => c.Name));

        next.Dispose();
        var third = await waiter;
        Assert.Same(socket, third.Socket());
        next.Dispose();
        Assert.Equal(1, pool.Used);
        third.Dispose();
        Assert.Equal(1, pool.Idle);
    }

    [Fact]
    public async Task Racing_disposals_of_one_lease_return_its_socket_once()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 1);
        for (var i = 0; i < 200; i++)
        {
            var lease = await pool.AcquireAsync();
            var waiter = pool.AcquireAsync().AsTask();
            await Task.WhenAll(Task.Run(lease.Dispose), Task.Run(lease.Dispose), Task.Run(async () => await lease.DisposeAsync()));

            var next = await waiter;
            Assert.Equal(1, pool.Used);
            Assert.Equal(0, pool.Idle);
            next.Dispose();
            Assert.Equal(1, pool.Idle);
        }

        Assert.Single(_connector.Created);
    }

    [Fact]
    public async Task Leak_detection_follows_each_lease_not_the_socket()
    {
        var logger = new FakeLogger();
        await using var pool = CreatePool(_time, _connector, o => { o.MaxLeases = 1; o.LeakDetectionThreshold = TimeSpan.FromSeconds(10); }, logger);
        var first = await pool.AcquireAsync();
        _time.Advance(TimeSpan.FromSeconds(5));
        first.Dispose();
        var second = await pool.AcquireAsync();

        // The first lease's threshold passes while the second holds the same socket for only 6 s.
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);

        _time.Advance(TimeSpan.FromSeconds(5));
        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);
        Assert.Contains($"lease {second.Id} ", warning.Message, StringComparison.Ordinal);
        Assert.Contains("held for 11000 ms", warning.Message, StringComparison.Ordinal);

        first.Dispose();
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 201);
        second.Dispose();
        var returned = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 201);
        Assert.Contains($"lease {second.Id} ", returned.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Blocking_timeout_must_be_shorter_than_CommandTimeout()
    {
        await using var pool = CreatePool(_time, _connector, o => o.CommandTimeout = TimeSpan.FromSeconds(10));
        using var lease = await pool.AcquireAsync();

        var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => lease.BlockingLeftPopAsync(["q"], TimeSpan.FromSeconds(10)));
        Assert.Contains("'Leases.CommandTimeout'", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => lease.BlockingMoveAsync("a", "b", ListSide.Left, ListSide.Right, TimeSpan.Zero));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => lease.WaitForReplicasAsync(1, TimeSpan.FromSeconds(9.5)));
    }

    [Fact]
    public async Task Dispose_fails_waiters_closes_idle_and_waits_for_returns()
    {
        var pool = CreatePool(_time, _connector, o => o.MaxLeases = 2, shutdownGracePeriod: TimeSpan.FromSeconds(5));
        var held = await pool.AcquireAsync();
        var idle = await pool.AcquireAsync();
        var idleSocket = idle.Socket();
        idle.Dispose();
        (await pool.AcquireAsync()).Dispose();
        var heldAgain = await pool.AcquireAsync();
        var waiter = pool.AcquireAsync().AsTask();

        var disposing = pool.DisposeAsync().AsTask();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter);
        await WaitUntil(() => idleSocket.IsDisposed || heldAgain.Socket() == idleSocket, "idle sockets to close");
        Assert.False(disposing.IsCompleted, "Dispose waits for held leases during the grace period.");
        Assert.Throws<ObjectDisposedException>(() => pool.AcquireAsync());

        var heldSocket = held.Socket();
        var againSocket = heldAgain.Socket();
        held.Dispose();
        heldAgain.Dispose();
        await disposing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(heldSocket.IsDisposed && againSocket.IsDisposed);
        Assert.Equal(0, pool.Sockets);
    }

    [Fact]
    public async Task Dispose_closes_held_leases_after_the_grace_period()
    {
        var pool = CreatePool(_time, _connector, shutdownGracePeriod: TimeSpan.FromSeconds(5));
        var held = await pool.AcquireAsync();
        var socket = held.Socket();

        var disposing = pool.DisposeAsync().AsTask();
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(socket.IsDisposed);
        _time.Advance(TimeSpan.FromSeconds(2));
        await disposing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(socket.IsDisposed);

        held.Dispose();
        Assert.Equal(1, socket.DisposeCount);
        await pool.DisposeAsync();
    }
}
