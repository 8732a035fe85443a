using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Admission;

public sealed class AdmissionHoldTests
{
    private readonly FakeTimeProvider _time = new();

    private AdmissionLimiter Create(int maxQueue = 4) =>
        new("cache", 8, maxQueue, TimeSpan.FromSeconds(1), _time, new RedisPoolMetrics("cache", meterFactory: null, () => new RedisPoolStatistics(), new RedisPoolOptions { Configuration = "127.0.0.1:6379" }));

    [Fact]
    public async Task While_held_arrivals_queue_and_resume_admits_them_in_order()
    {
        var limiter = Create();
        Assert.True(limiter.TryEnter());
        limiter.Hold("Sentinel is failing 'mymaster' over");

        Assert.False(limiter.TryEnter());
        var first = limiter.EnterAsync().AsTask();
        var second = limiter.EnterAsync().AsTask();
        limiter.Exit();
        Assert.Equal(0, limiter.InFlight);
        Assert.False(first.IsCompleted, "a permit freed while held is not granted");
        Assert.Equal(2, limiter.Queued);

        limiter.Resume();

        await Task.WhenAll(first, second);
        Assert.Equal(2, limiter.InFlight);
        Assert.Equal(0, limiter.Queued);
        Assert.Null(limiter.HeldFor);
        Assert.True(limiter.TryEnter());
    }

    [Fact]
    public async Task A_wait_that_outlasts_the_hold_is_rejected_naming_the_hold_and_QueueTimeout()
    {
        var limiter = Create();
        limiter.Hold("Sentinel is failing 'mymaster' over away from 10.0.0.1:6379");
        var waiting = limiter.EnterAsync().AsTask();

        _time.Advance(TimeSpan.FromSeconds(1));

        var rejected = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => waiting);
        Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, rejected.Reason);
        Assert.Contains("away from 10.0.0.1:6379", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("'QueueTimeout'", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("not sent", rejected.Message, StringComparison.Ordinal);
        Assert.Equal(1, limiter.RejectedQueueTimeout);
    }

    [Fact]
    public async Task The_queue_bound_still_applies_while_held()
    {
        var limiter = Create(maxQueue: 1);
        limiter.Hold("failover");
        _ = limiter.EnterAsync();

        var rejected = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => limiter.EnterAsync().AsTask());

        Assert.Equal(RedisPoolExhaustedReason.QueueFull, rejected.Reason);
    }
}
