using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Breaker;

/// <summary>The controller alone: every transition, driven by hand, with the probe start and the reports counted.</summary>
public sealed class BreakerStateControllerTests
{
    private static readonly MaxClientsClassifier.Classification s_maxClients =
        new(MaxClientsClassifier.FailureKind.MaxClients, "cache-1:6379 answered '-ERR max number of clients reached'", BreakerFixture.Endpoint);

    private static readonly MaxClientsClassifier.Classification s_refused =
        new(MaxClientsClassifier.FailureKind.ConnectFailure, "cache-1:6379 refused the connection", BreakerFixture.Endpoint);

    [Theory]
    [InlineData(0.0, 2000)]
    [InlineData(0.5, 2250)]
    [InlineData(0.999, 2499)]
    public void Jitter_spreads_each_break_between_its_duration_and_a_quarter_more(double sample, int expectedMs)
    {
        using var f = new ControllerFixture(new FixedRandom(sample));

        var wait = f.Controller.Jitter(TimeSpan.FromSeconds(2));

        Assert.Equal(expectedMs, (int)wait.TotalMilliseconds);
    }

    [Fact]
    public void Jitter_from_a_real_random_source_stays_in_bounds_and_is_not_lockstep()
    {
        using var f = new ControllerFixture(new Random(42));
        var d = TimeSpan.FromSeconds(2);

        var waits = Enumerable.Range(0, 1000).Select(_ => f.Controller.Jitter(d)).ToList();

        Assert.All(waits, w => Assert.InRange(w, d, d * 1.25));
        Assert.True(waits.Min() < d * 1.03, $"min {waits.Min()}");
        Assert.True(waits.Max() > d * 1.22, $"max {waits.Max()}");
        Assert.True(waits.Distinct().Count() > 900, "a fleet must not probe in lockstep");
    }

    [Fact]
    public void Open_turns_HalfOpen_when_the_break_elapses_and_asks_for_exactly_one_probe()
    {
        using var f = new ControllerFixture();

        Assert.True(f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed")));
        Assert.Equal(RedisPoolCircuitState.Open, f.Controller.State);

        f.Time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(RedisPoolCircuitState.Open, f.Controller.State);
        Assert.Equal(0, f.ProbesStarted);

        f.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(RedisPoolCircuitState.HalfOpen, f.Controller.State);
        Assert.Equal(1, f.ProbesStarted);
        Assert.Equal([RedisPoolCircuitState.Open, RedisPoolCircuitState.HalfOpen], f.States);

        f.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1, f.ProbesStarted);
    }

    [Fact]
    public async Task A_refused_socket_creation_half_opens_a_breaker_whose_timer_is_late()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var f = new ControllerFixture(time: new StalledTimers(time));
        f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed"));

        time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.True(f.Controller.TryReject(out var early));
        Assert.Equal((RedisPoolCircuitState.Open, TimeSpan.FromMilliseconds(1)), (early.State, early.RetryAfter));

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(RedisPoolCircuitState.Open, f.Controller.State);
        Assert.True(f.Controller.TryReject(out var late));

        Assert.Equal(RedisPoolCircuitState.HalfOpen, late.State);
        Assert.Equal(TimeSpan.FromSeconds(1), late.RetryAfter);
        Assert.Contains("before the timer ran", f.Events[^1].Reason, StringComparison.Ordinal);
        await f.FirstProbe.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(f.Controller.TryReject(out _));
        Assert.Equal(1, f.ProbesStarted);
        Assert.Equal(3, f.Controller.Rejected);
    }

    [Fact]
    public void A_granted_probe_closes_and_a_refused_one_reopens_with_the_break_doubled()
    {
        using var f = new ControllerFixture();
        f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed"));
        f.Time.Advance(TimeSpan.FromSeconds(2));

        Assert.True(f.Controller.OnProbeCompleted(granted: false, "cache-1:6379 answered '-ERR max number of clients reached'"));
        Assert.Equal(TimeSpan.FromSeconds(4), f.Events[^1].RetryAfter);
        Assert.StartsWith("Half-open probe:", f.Controller.LastFailure!.Message, StringComparison.Ordinal);

        f.Time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(f.Controller.OnProbeCompleted(granted: true, "cache-1:6379 answered '+PONG'"));

        Assert.Equal(RedisPoolCircuitState.Closed, f.Controller.State);
        Assert.Contains("after 1 failed probes", f.Events[^1].Reason, StringComparison.Ordinal);
        Assert.False(f.Controller.TryReject(out _));
        Assert.Equal(5, f.Controller.Transitions);
    }

    [Fact]
    public void A_probe_answer_outside_HalfOpen_changes_nothing()
    {
        using var f = new ControllerFixture();

        Assert.False(f.Controller.OnProbeCompleted(granted: false, "stray"));
        f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed"));
        Assert.False(f.Controller.OnProbeCompleted(granted: true, "stray"));

        Assert.Equal(RedisPoolCircuitState.Open, f.Controller.State);
        Assert.Equal(1, f.Controller.Transitions);
    }

    [Fact]
    public void Connect_failures_trip_at_the_threshold_unless_a_socket_opened_in_between()
    {
        using var f = new ControllerFixture(configure: o => o.ConnectFailureThreshold = 2);
        var failure = new InvalidOperationException("refused");

        Assert.False(f.Controller.OnFailureClassified(s_refused, failure));
        f.Controller.OnSocketOpened();
        Assert.False(f.Controller.OnFailureClassified(s_refused, failure));
        Assert.Equal(RedisPoolCircuitState.Closed, f.Controller.State);

        Assert.True(f.Controller.OnFailureClassified(s_refused, failure));
        Assert.Contains("2 consecutive connect failures", f.Events[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_handler_may_call_back_in_and_still_sees_transitions_in_order()
    {
        using var f = new ControllerFixture();
        var seen = new List<(RedisPoolCircuitState State, bool Rejected)>();
        f.OnTransition = e => seen.Add((e.State, f.Controller.TryReject(out _)));

        f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed"));
        f.Time.Advance(TimeSpan.FromSeconds(2));
        f.Controller.OnProbeCompleted(granted: true, "cache-1:6379 answered '+PONG'");

        Assert.Equal([(RedisPoolCircuitState.Open, true), (RedisPoolCircuitState.HalfOpen, true), (RedisPoolCircuitState.Closed, false)], seen);
    }

    [Fact]
    public void Nothing_changes_after_disposal()
    {
        using var f = new ControllerFixture();
        f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed"));
        f.Controller.Dispose();

        f.Time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(RedisPoolCircuitState.Open, f.Controller.State);
        Assert.Equal(0, f.ProbesStarted);
        Assert.False(f.Controller.OnFailureClassified(s_maxClients, new InvalidOperationException("socket closed")));
    }

    private sealed class ControllerFixture : IDisposable
    {
        private int _probesStarted;

        public ControllerFixture(Random? random = null, TimeProvider? time = null, Action<RedisPoolBreakerOptions>? configure = null)
        {
            var options = new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(2), MaxBreakDuration = TimeSpan.FromSeconds(10) };
            configure?.Invoke(options);
            Controller = new BreakerStateController(
                BreakerFixture.Pool, options, [BreakerFixture.Endpoint], TimeSpan.FromSeconds(1), time ?? Time, NullLogger.Instance, random ?? new FixedRandom(0.0),
                () =>
                {
                    Interlocked.Increment(ref _probesStarted);
                    FirstProbe.TrySetResult();
                },
                e =>
                {
                    Events.Add(e);
                    OnTransition?.Invoke(e);
                });
        }

        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

        public BreakerStateController Controller { get; }

        public List<RedisPoolCircuitStateChangedEventArgs> Events { get; } = [];

        public IEnumerable<RedisPoolCircuitState> States => Events.Select(e => e.State);

        public Action<RedisPoolCircuitStateChangedEventArgs>? OnTransition { get; set; }

        public TaskCompletionSource FirstProbe { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int ProbesStarted => Volatile.Read(ref _probesStarted);

        public void Dispose() => Controller.Dispose();
    }

    /// <summary>Time that moves while no timer ever fires: a thread pool too starved to run the breaker's timer.</summary>
    private sealed class StalledTimers(FakeTimeProvider time) : TimeProvider
    {
        public override long TimestampFrequency => time.TimestampFrequency;

        public override long GetTimestamp() => time.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => time.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new NeverFires();

        private sealed class NeverFires : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
