using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Admission;

public sealed class AdmissionLimiterTests
{
    private readonly FakeTimeProvider _time = new();

    private static RedisPoolMetrics Metrics() =>
        new("cache", meterFactory: null, () => new RedisPoolStatistics(), new RedisPoolOptions { Configuration = "127.0.0.1:6379" });

    private AdmissionLimiter Create(int maxInFlight = 2, int maxQueue = 2, int timeoutMs = 1000) =>
        new("cache", maxInFlight, maxQueue, TimeSpan.FromMilliseconds(timeoutMs), _time, Metrics());

    [Fact]
    public void Admits_up_to_MaxInFlight_without_waiting()
    {
        var limiter = Create(maxInFlight: 2);

        Assert.True(limiter.TryEnter());
        Assert.True(limiter.TryEnter());
        Assert.False(limiter.TryEnter());
        Assert.Equal(2, limiter.InFlight);
    }

    [Fact]
    public async Task Waiters_are_admitted_first_come_first_served_as_permits_return()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 3);
        Assert.True(limiter.TryEnter());
        var order = new List<int>();
        var waits = Enumerable.Range(0, 3)
            .Select(i => limiter.EnterAsync().AsTask().ContinueWith(_ => { lock (order) { order.Add(i); } }, TaskScheduler.Default))
            .ToArray();
        Assert.Equal(3, limiter.Queued);

        for (var i = 0; i < 3; i++)
        {
            limiter.Exit();
            await waits[i];
        }

        Assert.Equal([0, 1, 2], order);
        Assert.Equal(1, limiter.InFlight);
        Assert.Equal(0, limiter.Queued);
    }

    [Fact]
    public async Task A_full_queue_rejects_at_once_naming_the_option()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 1);
        Assert.True(limiter.TryEnter());
        _ = limiter.EnterAsync();

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => limiter.EnterAsync().AsTask());

        Assert.Equal(RedisPoolExhaustedReason.QueueFull, ex.Reason);
        Assert.Contains("'MaxQueueLength' 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("1 in flight of 'MaxInFlight' 1", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, limiter.RejectedQueueFull);
    }

    [Fact]
    public async Task A_queued_caller_times_out_after_QueueTimeout_and_leaves_the_queue()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 4, timeoutMs: 500);
        Assert.True(limiter.TryEnter());
        var wait = limiter.EnterAsync().AsTask();

        _time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.False(wait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => wait);
        Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, ex.Reason);
        Assert.Contains("'QueueTimeout'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, limiter.Queued);
        Assert.Equal(1, limiter.InFlight);
        Assert.Equal(1, limiter.RejectedQueueTimeout);
    }

    [Fact]
    public async Task Cancelling_a_wait_loses_no_permit()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 4);
        Assert.True(limiter.TryEnter());
        using var cts = new CancellationTokenSource();
        var wait = limiter.EnterAsync(cts.Token).AsTask();

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        limiter.Exit();

        Assert.Equal(0, limiter.InFlight);
        Assert.Equal(0, limiter.Queued);
        Assert.True(limiter.TryEnter());
    }

    [Fact]
    public async Task A_permit_granted_to_a_waiter_that_just_timed_out_is_handed_on()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 4, timeoutMs: 100);
        Assert.True(limiter.TryEnter());
        var first = limiter.EnterAsync().AsTask();
        _time.Advance(TimeSpan.FromMilliseconds(50));
        var second = limiter.EnterAsync().AsTask();
        _time.Advance(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => first);

        limiter.Exit();

        await second;
        Assert.Equal(1, limiter.InFlight);
    }

    [Fact]
    public async Task Close_fails_waiters_and_later_callers_with_ObjectDisposedException()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 4);
        Assert.True(limiter.TryEnter());
        var wait = limiter.EnterAsync().AsTask();

        limiter.Close();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => wait);
        Assert.Throws<ObjectDisposedException>(() => limiter.TryEnter());
        var drain = limiter.WaitForDrainAsync(TimeSpan.FromSeconds(5));
        Assert.False(drain.IsCompleted);
        limiter.Exit();
        Assert.True(await drain);
    }

    [Fact]
    public async Task Drain_gives_up_after_the_grace_period()
    {
        var limiter = Create(maxInFlight: 1, maxQueue: 4);
        Assert.True(limiter.TryEnter());
        limiter.Close();

        var drain = limiter.WaitForDrainAsync(TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.False(await drain);
    }

    private AdmissionLimiter CreateAdaptive(AdaptiveInFlightLimit limit, int maxQueue = 1) =>
        new("cache", limit.Ceiling, maxQueue, TimeSpan.FromSeconds(1), _time, Metrics(), rejectionLog: null, limit);

    /// <summary>Completes sampled commands for one window of the adaptive limit, each having taken <paramref name="latencyMs"/>.</summary>
    private void CompleteWindow(AdmissionLimiter limiter, double latencyMs)
    {
        _time.Advance(AdaptiveInFlightLimit.Window);
        var ticks = (long)(latencyMs / 1000 * _time.TimestampFrequency);
        for (var i = 0; i < AdaptiveInFlightLimit.MinSamples; i++)
        {
            Assert.True(limiter.TryEnter() || limiter.InFlight > 0);
            limiter.Exit(sampleStart: _time.GetTimestamp() - ticks);
        }
    }

    [Fact]
    public void Times_one_admitted_command_in_sixteen_and_none_when_the_limit_is_fixed()
    {
        var adaptive = CreateAdaptive(new AdaptiveInFlightLimit(1, 64, _time));
        var fixedLimit = Create(maxInFlight: 64);

        var sampled = Enumerable.Range(0, 160).Count(_ => adaptive.SampleStart() != 0);

        Assert.Equal(160 / AdaptiveInFlightLimit.SampleEvery, sampled);
        Assert.All(Enumerable.Range(0, 160), _ => Assert.Equal(0, fixedLimit.SampleStart()));
    }

    [Fact]
    public async Task A_limit_that_grows_admits_queued_callers()
    {
        var limit = new AdaptiveInFlightLimit(1, 4, _time);
        var limiter = CreateAdaptive(limit, maxQueue: 4);
        CompleteWindow(limiter, 0.2);
        while (limit.Limit > 1)
        {
            CompleteWindow(limiter, 50);
        }

        Assert.True(limiter.TryEnter());
        var first = limiter.EnterAsync().AsTask();
        var second = limiter.EnterAsync().AsTask();

        // The one command in flight completes near the baseline: the permit it returns and the one the limit gains admit both.
        for (var i = 0; i < AdaptiveInFlightLimit.MinSamples - 1; i++)
        {
            limit.Complete(_time.GetTimestamp(), inFlight: 1);
        }

        _time.Advance(AdaptiveInFlightLimit.Window);
        limiter.Exit(sampleStart: _time.GetTimestamp() - (long)(0.0002 * _time.TimestampFrequency));

        Assert.Equal(2, limit.Limit);
        await first;
        await second;
        Assert.Equal(2, limiter.InFlight);
        Assert.Equal(0, limiter.Queued);
    }

    [Fact]
    public async Task A_rejection_names_the_adaptive_limit_its_value_and_the_options()
    {
        var limit = new AdaptiveInFlightLimit(2, 64, _time);
        var limiter = CreateAdaptive(limit, maxQueue: 1);
        CompleteWindow(limiter, 0.25);
        while (limit.Limit > 2)
        {
            CompleteWindow(limiter, 50);
        }

        Assert.True(limiter.TryEnter());
        Assert.True(limiter.TryEnter());
        _ = limiter.EnterAsync();

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => limiter.EnterAsync().AsTask());

        Assert.Equal(RedisPoolExhaustedReason.QueueFull, ex.Reason);
        Assert.Contains("2 in flight of the adaptive in-flight limit 2, which moves between 2 and 'MaxInFlight' 64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("baseline 0.25 ms", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'AdaptiveInFlight'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'MaxQueueLength' 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_flight_never_exceeds_MaxInFlight_under_concurrency()
    {
        var limiter = new AdmissionLimiter("cache", 4, 10_000, TimeSpan.FromMinutes(5), TimeProvider.System, Metrics());
        var current = 0;
        var peak = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 2000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (_, _) =>
        {
            await limiter.EnterAsync();
            var now = Interlocked.Increment(ref current);
            InterlockedMax(ref peak, now);
            await Task.Yield();
            Interlocked.Decrement(ref current);
            limiter.Exit();
        });

        Assert.InRange(peak, 1, 4);
        Assert.Equal(0, limiter.InFlight);
        Assert.Equal(0, limiter.Queued);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }
}
