using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Breaker;

public sealed class MaxClientsBreakerTests
{
    private static readonly TimeSpan s_second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Max_clients_greeting_trips_the_breaker_for_the_break_duration()
    {
        await using var f = new BreakerFixture();

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Equal(1, f.Probe.GreetingCalls);
        var opened = Assert.Single(f.Events);
        Assert.Equal((RedisPoolCircuitState.Closed, RedisPoolCircuitState.Open), (opened.PreviousState, opened.State));
        Assert.Equal(TimeSpan.FromSeconds(2), opened.RetryAfter);
        Assert.Contains("-ERR max number of clients reached", opened.Reason, StringComparison.Ordinal);
        Assert.Equal(BreakerFixture.Pool, opened.PoolName);

        f.Time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Equal(0, f.Probe.PingCalls);

        f.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Equal(1, f.Probe.PingCalls);
        Assert.Equal(
            [RedisPoolCircuitState.Open, RedisPoolCircuitState.HalfOpen, RedisPoolCircuitState.Closed],
            f.Events.Select(e => e.State));
        Assert.Contains("+PONG", f.Events[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_failed_probe_doubles_the_break_up_to_MaxBreakDuration_and_success_resets_it()
    {
        await using var f = new BreakerFixture();
        f.Probe.Ping = () => Task.FromResult(new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients reached"));

        await f.FailAsync();
        foreach (var seconds in new[] { 2, 4, 8, 10, 10 })
        {
            f.Time.Advance(TimeSpan.FromSeconds(seconds));
        }

        var breaks = f.Events.Where(e => e.State == RedisPoolCircuitState.Open).Select(e => e.RetryAfter!.Value.TotalSeconds).ToList();
        Assert.Equal([2, 4, 8, 10, 10, 10], breaks);
        Assert.Equal(5, f.Probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);

        f.Probe.Ping = () => Task.FromResult(new ProbeResult(ProbeOutcome.Replied, "-NOAUTH Authentication required."));
        f.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);

        f.Time.Advance(TimeSpan.FromSeconds(5));
        await f.FailAsync();
        Assert.Equal(TimeSpan.FromSeconds(2), f.Events[^1].RetryAfter);
    }

    [Fact]
    public async Task Failed_probes_keep_the_inner_exception_chain_two_deep_however_long_the_outage()
    {
        await using var f = new BreakerFixture();
        f.Probe.Ping = () => Task.FromResult(new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients reached"));
        await f.FailAsync();

        for (var i = 0; i < 50; i++)
        {
            f.Time.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(50, f.Probe.PingCalls);
        var chain = new List<Exception>();
        for (var e = f.Breaker.LastFailure; e is not null; e = e.InnerException)
        {
            chain.Add(e);
        }

        // The last probe's failure, wrapping the failure that tripped the breaker, wrapping what StackExchange.Redis threw.
        Assert.Equal(3, chain.Count);
        Assert.StartsWith("Half-open probe:", chain[0].Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Half-open probe:", chain[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exactly_one_half_open_probe_under_concurrent_callers_and_timer_ticks()
    {
        await using var f = new BreakerFixture();
        var answer = new TaskCompletionSource<ProbeResult>();
        f.Probe.Ping = () => answer.Task;
        await f.FailAsync();
        var rejected = 0;
        using var start = new Barrier(51);

        // Dedicated threads: 51 blocked thread-pool threads would wait on thread injection, not on the breaker.
        var callers = Enumerable.Range(0, 50).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 20; i++)
            {
                try
                {
                    f.Breaker.ThrowIfOpen("cache-1:6379");
                }
                catch (RedisPoolCircuitOpenException)
                {
                    Interlocked.Increment(ref rejected);
                }
            }
        })).ToList();
        var ticker = new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 40; i++)
            {
                f.Time.Advance(TimeSpan.FromMilliseconds(100));
            }
        });
        callers.Add(ticker);
        callers.ForEach(t => t.Start());
        callers.ForEach(t => t.Join());

        Assert.True(SpinWait.SpinUntil(() => f.Probe.PingCalls > 0, TimeSpan.FromSeconds(5)), "no half-open probe started");
        Assert.Equal(RedisPoolCircuitState.HalfOpen, f.Breaker.State);
        Assert.Equal(1000, rejected);
        Assert.Equal(1000, f.Breaker.RejectedCircuitOpen);

        answer.SetResult(new ProbeResult(ProbeOutcome.Replied, "+PONG"));

        Assert.True(SpinWait.SpinUntil(() => f.Breaker.State == RedisPoolCircuitState.Closed, TimeSpan.FromSeconds(5)));
        Assert.Equal(1, f.Probe.PingCalls);
        lock (f.Events)
        {
            Assert.Single(f.Events, e => e.State == RedisPoolCircuitState.HalfOpen);
        }
    }

    [Fact]
    public async Task Each_circuit_open_refusal_is_counted_as_a_rejection()
    {
        const string PoolName = "circuit-open-metrics";
        using var metrics = new RedisPoolMetrics(PoolName, meterFactory: null, statistics: null, new RedisPoolOptions());
        using var rejected = new MetricCollector<long>(metrics.Meter, RedisPoolInstrumentNames.Rejected);
        await using var f = new BreakerFixture(readRejectedConnections: Counter(10, 11), metrics: metrics);
        await f.FailAsync();

        f.Rejection();
        f.Rejection();

        var ours = rejected.GetMeasurementSnapshot().Where(m => Equals(m.Tags[RedisPoolInstrumentNames.PoolNameTag], PoolName)).ToList();
        Assert.Equal(2, ours.Count(m => Equals(m.Tags[RedisPoolInstrumentNames.ReasonTag], "circuit_open")));
        Assert.Equal(2, f.Breaker.RejectedCircuitOpen);
    }

    [Fact]
    public async Task ThrowIfOpen_names_the_pool_endpoint_state_wait_and_knob_and_carries_the_classified_failure()
    {
        await using var f = new BreakerFixture(readRejectedConnections: Counter(10, 11));
        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromMilliseconds(500));

        var ex = f.Rejection();

        Assert.Equal(TimeSpan.FromMilliseconds(1500), ex.RetryAfter);
        Assert.Contains("'orders'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cache-1:6379", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Open", ex.Message, StringComparison.Ordinal);
        Assert.Contains("next probe in 1.5 s", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'Breaker.BreakDuration' (currently 2.0 s)", ex.Message, StringComparison.Ordinal);
        var inner = Assert.IsType<RedisConnectionException>(ex.InnerException);
        Assert.Contains("-ERR max number of clients reached", inner.Message, StringComparison.Ordinal);
        Assert.Contains("rejected_connections 10 -> 11", inner.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(inner.InnerException);
        Assert.Equal(1, f.Breaker.RejectedCircuitOpen);
        Assert.Equal(1, f.Probe.GreetingCalls);
        Assert.Equal(0, f.Probe.PingCalls);
    }

    [Fact]
    public async Task ThrowIfOpen_while_half_open_says_a_probe_is_being_tried()
    {
        await using var f = new BreakerFixture();
        f.Probe.Ping = () => new TaskCompletionSource<ProbeResult>().Task;
        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(2));

        var ex = f.Rejection();

        Assert.Equal(RedisPoolCircuitState.HalfOpen, f.Breaker.State);
        Assert.Contains("HalfOpen", ex.Message, StringComparison.Ordinal);
        Assert.Contains("probe socket is being tried now", ex.Message, StringComparison.Ordinal);
        Assert.Equal(s_second, ex.RetryAfter);
    }

    [Fact]
    public void ThrowIfOpen_does_nothing_while_closed()
    {
        var f = new BreakerFixture();

        f.Breaker.ThrowIfOpen("cache-1:6379");

        Assert.Equal(0, f.Breaker.RejectedCircuitOpen);
    }

    [Fact]
    public async Task Reconnect_policy_mirrors_exponential_retry_when_closed_and_suppresses_and_counts_while_open()
    {
        await using var f = new BreakerFixture();
        var policy = f.Breaker.ReconnectRetryPolicy;

        Assert.True(policy.ShouldRetry(0, 60_000));
        Assert.False(policy.ShouldRetry(0, 0));

        await f.FailAsync();
        Assert.False(policy.ShouldRetry(0, 60_000));
        Assert.False(policy.ShouldRetry(1, 60_000));
        Assert.False(policy.ShouldRetry(0, 0));
        Assert.Equal(2, f.Breaker.ReconnectsSuppressed);

        f.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.True(policy.ShouldRetry(0, 60_000));
        Assert.Equal(2, f.Breaker.ReconnectsSuppressed);
    }

    [Fact]
    public async Task ConnectFailureThreshold_refusals_in_a_row_trip_the_breaker_with_one_probe_for_the_burst()
    {
        await using var f = new BreakerFixture();
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Refused, Error: "ConnectionRefused");

        await f.FailAsync();
        await f.FailAsync();
        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Contains("3 consecutive connect failures", f.Events[^1].Reason, StringComparison.Ordinal);
        Assert.Contains("'Breaker.ConnectFailureThreshold' is 3", f.Events[^1].Reason, StringComparison.Ordinal);
        Assert.Equal(1, f.Probe.GreetingCalls);
        Assert.Contains("refused", f.Rejection().InnerException!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_failures_share_one_probe_and_a_cancelled_caller_does_not_cancel_it()
    {
        await using var f = new BreakerFixture();
        var answer = new TaskCompletionSource<ProbeResult>();
        f.Probe.PendingGreeting = answer.Task;
        using var cancelled = new CancellationTokenSource();

        var failures = Enumerable.Range(0, 20).Select(_ => f.FailAsync()).ToList();
        var impatient = f.Breaker.OnSocketFailedAsync(new InvalidOperationException("x"), cancelled.Token);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => impatient);
        answer.SetResult(new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients reached"));
        await Task.WhenAll(failures);

        Assert.Equal(1, f.Probe.GreetingCalls);
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Single(f.Events);
    }

    [Fact]
    public async Task Refusals_spread_in_time_are_each_probed()
    {
        await using var f = new BreakerFixture(o => o.ConnectFailureThreshold = 2);
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.TimedOut);

        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(3));
        await f.FailAsync();

        Assert.Equal(2, f.Probe.GreetingCalls);
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
    }

    [Fact]
    public async Task Connect_failures_do_not_trip_when_TripOnConnectFailures_is_off()
    {
        await using var f = new BreakerFixture(o => o.TripOnConnectFailures = false);
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Refused);

        for (var i = 0; i < 5; i++)
        {
            await f.FailAsync();
        }

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Empty(f.Events);
    }

    [Fact]
    public async Task An_opened_socket_resets_the_connect_failure_count()
    {
        await using var f = new BreakerFixture();
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Refused);

        await f.FailAsync();
        await f.FailAsync();
        f.Breaker.OnSocketOpened();
        await f.FailAsync();
        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Equal(2, f.Probe.GreetingCalls);
    }

    [Fact]
    public async Task A_server_with_free_slots_does_not_trip_and_resets_the_count()
    {
        await using var f = new BreakerFixture(o => o.ConnectFailureThreshold = 2);
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Refused);
        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(2));
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Silent);
        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(2));
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Refused);

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Equal(3, f.Probe.GreetingCalls);
    }

    [Fact]
    public async Task No_probe_socket_is_opened_while_the_breaker_is_open()
    {
        await using var f = new BreakerFixture();
        await f.FailAsync();

        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(1.5));
        await f.FailAsync();

        Assert.Equal(1, f.Probe.GreetingCalls);
        Assert.Equal(0, f.Probe.PingCalls);
    }

    [Fact]
    public async Task Tls_drop_with_rising_rejected_connections_is_max_clients()
    {
        await using var f = new BreakerFixture(useTls: true, readRejectedConnections: Counter(7, 8));
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.ClosedWithoutReply);

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Contains("closed it before the TLS handshake finished", f.Events[^1].Reason, StringComparison.Ordinal);
        Assert.Contains("rejected_connections 7 -> 8", f.Events[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_drop_without_a_rising_counter_is_not_max_clients()
    {
        await using var f = new BreakerFixture(useTls: true, readRejectedConnections: Counter(7, 7));
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.ClosedWithoutReply);

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
    }

    [Fact]
    public async Task Tls_half_open_probe_reads_without_sending_and_a_silent_server_closes_the_breaker()
    {
        await using var f = new BreakerFixture(useTls: true);
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.ClosedWithoutReply);
        await f.FailAsync();
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);

        f.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);

        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.Silent);
        f.Time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Equal(3, f.Probe.GreetingCalls);
        Assert.Equal(0, f.Probe.PingCalls);
    }

    [Fact]
    public async Task Plain_drop_without_reader_is_not_max_clients_and_a_rising_counter_is()
    {
        await using var withoutReader = new BreakerFixture();
        withoutReader.Probe.Greeting = () => new ProbeResult(ProbeOutcome.ClosedWithoutReply);
        await withoutReader.FailAsync();
        Assert.Equal(RedisPoolCircuitState.Closed, withoutReader.Breaker.State);

        await using var withReader = new BreakerFixture(readRejectedConnections: Counter(3, 4));
        withReader.Probe.Greeting = () => new ProbeResult(ProbeOutcome.ClosedWithoutReply);
        await withReader.FailAsync();
        Assert.Equal(RedisPoolCircuitState.Open, withReader.Breaker.State);
    }

    [Fact]
    public async Task A_failing_reader_falls_back_to_the_probe_alone()
    {
        await using var f = new BreakerFixture(readRejectedConnections: _ => throw new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "gone", null, CommandStatus.Unknown));

        await f.FailAsync();

        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
        Assert.Contains("rejected_connections not read", f.Events[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cluster_max_clients_text_is_recognised()
    {
        Assert.True(MaxClientsProbe.IsMaxClientsError("-ERR max number of clients + cluster connections reached"));
        Assert.False(MaxClientsProbe.IsMaxClientsError("-NOAUTH Authentication required."));

        await using var f = new BreakerFixture();
        f.Probe.Greeting = () => new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients + cluster connections reached");
        await f.FailAsync();
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
    }

    [Fact]
    public async Task Every_transition_is_logged_with_its_event_id()
    {
        await using var f = new BreakerFixture();
        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(2));

        var ids = f.Logger.Collector.GetSnapshot().Select(r => r.Id.Id).Where(id => id is >= 100 and < 150).ToList();

        Assert.Equal([100, 101, 102], ids);
        Assert.Contains("max number of clients", f.Logger.Collector.GetSnapshot().First(r => r.Id.Id == 100).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_throwing_handler_does_not_stop_the_breaker()
    {
        await using var f = new BreakerFixture();
        f.Breaker.StateChanged += (_, _) => throw new InvalidOperationException("handler bug");

        await f.FailAsync();
        f.Time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(RedisPoolCircuitState.Closed, f.Breaker.State);
        Assert.Contains(f.Logger.Collector.GetSnapshot(), r => r.Id.Id == 105);
    }

    [Fact]
    public async Task Dispose_stops_the_timer()
    {
        var f = new BreakerFixture();
        await f.FailAsync();

        await f.Breaker.DisposeAsync();
        f.Time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(0, f.Probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Open, f.Breaker.State);
    }

    [Fact]
    public async Task Connection_failed_events_classify_in_the_background()
    {
        await using var f = new BreakerFixture();

        f.Breaker.OnConnectionFailed(new ConnectionFailedEventArgs(this, BreakerFixture.Endpoint, ConnectionType.Interactive, ConnectionFailureType.SocketClosed, new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed", null, CommandStatus.Unknown), "cache-1:6379"));

        Assert.True(SpinWait.SpinUntil(() => f.Breaker.State == RedisPoolCircuitState.Open, TimeSpan.FromSeconds(5)));
    }

    private static Func<CancellationToken, Task<long?>> Counter(params long[] values)
    {
        var next = 0;
        return _ => Task.FromResult<long?>(values[Math.Min(next++, values.Length - 1)]);
    }
}
