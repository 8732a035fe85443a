using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>A stalled server (DEBUG SLEEP) against a small admission window: nobody hangs, nothing leaks.</summary>
[Collection(FaultCollection.Name)]
public sealed class BackpressureTests : StallableServer
{
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

        // The admin connection stalls the whole server for 2 s.
        var sleep = StallAsync(2);
        await Task.Delay(50);

        var inFlight = Enumerable.Range(0, 2).Select(i => Timed(() => db.StringGetAsync($"k{i}"))).ToArray();
        var queued = Enumerable.Range(0, 4).Select(i => Timed(() => db.StringGetAsync($"q{i}"))).ToArray();
        var statistics = pool.GetStatistics();
        Assert.Equal(2, statistics.InFlight);
        Assert.Equal(4, statistics.Queued);

        var rejected = Stopwatch.StartNew();
        var full = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => db.StringGetAsync("rejected"));
        rejected.Stop();
        Assert.Equal(RedisPoolExhaustedReason.QueueFull, full.Reason);
        Assert.True(rejected.ElapsedMilliseconds < 100, $"rejection took {rejected.ElapsedMilliseconds} ms");

        foreach (var wait in queued)
        {
            var (elapsed, error) = await wait;
            var timeout = Assert.IsType<RedisPoolExhaustedException>(error);
            Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, timeout.Reason);
            Assert.InRange(elapsed, queueTimeout - TimeSpan.FromMilliseconds(20), queueTimeout + TimeSpan.FromMilliseconds(100));
        }

        await sleep;
        foreach (var call in inFlight)
        {
            var (_, error) = await call;
            Assert.Null(error);
        }

        Assert.Equal(0, pool.GetStatistics().InFlight);
        Assert.Equal(0, pool.GetStatistics().Queued);
        Assert.True(await db.StringSetAsync("after", "ok"));
        Assert.Equal("ok", await db.StringGetAsync("after"));
    }

    private static async Task<(TimeSpan Elapsed, Exception? Error)> Timed(Func<Task<RedisValue>> call)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            await call();
            return (watch.Elapsed, null);
        }
        catch (Exception ex)
        {
            return (watch.Elapsed, ex);
        }
    }
}
