using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>A stalled server (CLIENT PAUSE ALL) against a small admission window: nobody hangs, nothing leaks.</summary>
[Collection(FaultCollection.Name)]
public sealed class BackpressureTests(ITestOutputHelper output) : StallableServer
{
    /// <summary>
    /// The promise is QueueTimeout + 100 ms, which it keeps on a quiet machine. On a starved 2-core machine the timer
    /// callback that ends the wait can itself run seconds late, which the pool cannot prevent, so the test allows 3 s:
    /// still short of the stall, whose end would admit the caller instead (the reason asserted is QueueTimeout).
    /// </summary>
    private static readonly TimeSpan s_timerSlack = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Callers_past_the_queue_are_rejected_at_once_and_queued_ones_at_QueueTimeout()
    {
        var queueTimeout = TimeSpan.FromMilliseconds(500);
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "stall",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            MaxInFlight = 2,
            MaxQueueLength = 4,
            QueueTimeout = queueTimeout,
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        // Every client is held from the moment the server acknowledges the pause.
        var stallOver = await StallAsync(queueTimeout + s_timerSlack + TimeSpan.FromSeconds(1));

        var inFlight = Enumerable.Range(0, 2).Select(i => db.StringGetAsync($"k{i}")).ToArray();
        var queued = Enumerable.Range(0, 4).Select(i => Timed(() => db.StringGetAsync($"q{i}"))).ToArray();
        var statistics = pool.GetStatistics();
        Assert.Equal(2, statistics.InFlight);
        Assert.Equal(4, statistics.Queued);

        // "At once" is a state, not a duration: the call returns an already failed task.
        var rejected = db.StringGetAsync("rejected");
        Assert.True(rejected.IsFaulted, "a caller past MaxQueueLength must be rejected without waiting");
        var full = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => rejected);
        Assert.Equal(RedisPoolExhaustedReason.QueueFull, full.Reason);

        foreach (var wait in queued)
        {
            var (elapsed, error) = await wait;
            output.WriteLine($"queued caller answered after {elapsed.TotalMilliseconds:F0} ms (QueueTimeout {queueTimeout.TotalMilliseconds:F0} ms)");
            var timeout = Assert.IsType<RedisPoolExhaustedException>(error);
            Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, timeout.Reason);
            Assert.InRange(elapsed, queueTimeout - TimeSpan.FromMilliseconds(20), queueTimeout + s_timerSlack);
        }

        await stallOver;
        foreach (var call in inFlight)
        {
            await call;
        }

        Assert.Equal(0, pool.GetStatistics().InFlight);
        Assert.Equal(0, pool.GetStatistics().Queued);
        Assert.True(await db.StringSetAsync("after", "ok"));
        Assert.Equal("ok", await db.StringGetAsync("after"));
    }

    /// <summary>
    /// Times a call from the moment it is made to the moment its task completes, on the thread that completes it
    /// (the pool's timer), so a late test continuation is not counted against the pool.
    /// </summary>
    private static Task<(TimeSpan Elapsed, Exception? Error)> Timed(Func<Task<RedisValue>> call)
    {
        var started = Stopwatch.GetTimestamp();
        return call().ContinueWith(
            t => (Stopwatch.GetElapsedTime(started), t.Exception?.InnerException),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}
