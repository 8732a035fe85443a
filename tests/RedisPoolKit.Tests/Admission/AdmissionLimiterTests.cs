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
