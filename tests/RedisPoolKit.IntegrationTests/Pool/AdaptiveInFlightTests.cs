using RedisPoolKit.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>The adaptive in-flight limit against a real server: it falls while the server stalls and climbs back once it answers.</summary>
[Collection(FaultCollection.Name)]
public sealed class AdaptiveInFlightTests(ITestOutputHelper output) : StallableServer
{
    // Bounds on waiting for a state, not on how fast the limit moves: a busy 2-core machine may need many windows.
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_limit_falls_while_the_server_stalls_and_climbs_back_to_MaxInFlight_once_it_answers()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "adaptive",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            MaxInFlight = 256,
            QueueTimeout = TimeSpan.FromSeconds(5),
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        // Half the ceiling in callers, in a closed loop: the limit grows while the pool uses half of it, so it may reach 256.
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var callers = Enumerable.Range(0, 128).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await db.StringGetAsync("adaptive:key");
                }
                catch (RedisPoolExhaustedException)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();

        await WaitUntilAsync(() => pool.GetStatistics().InFlightLimitBaseline is not null, "a baseline is measured");

        // Stall the server until a window sees the delay; the snapshot that shows the decrease shows the limit it left.
        var decreasesBefore = pool.GetStatistics().InFlightLimitDecreases;
        RedisPoolStatistics? fallen = null;
        await WaitUntilAsync(
            async () =>
            {
                await await StallAsync(TimeSpan.FromMilliseconds(300));
                fallen = pool.GetStatistics();
                return fallen.InFlightLimitDecreases > decreasesBefore;
            },
            "the limit falls while the server stalls");
        output.WriteLine($"after stalls: limit {fallen!.InFlightLimit}, baseline {fallen.InFlightLimitBaseline?.TotalMilliseconds:F3} ms, {fallen.InFlightLimitDecreases} decreases");
        Assert.InRange(fallen.InFlightLimit, 64, 255);

        await WaitUntilAsync(() => pool.GetStatistics().InFlightLimit == 256, "the limit climbs back to MaxInFlight");
        var recovered = pool.GetStatistics();
        output.WriteLine($"recovered: limit {recovered.InFlightLimit}, {recovered.InFlightLimitIncreases} increases, {failures} rejections");
        Assert.True(recovered.InFlightLimitIncreases > 0);

        await stop.CancelAsync();
        await Task.WhenAll(callers);
        Assert.Equal(0, pool.GetStatistics().InFlight);
        Assert.Equal(0, pool.GetStatistics().Queued);
    }

    [Fact]
    public async Task A_caller_refused_while_the_limit_is_down_is_told_the_adaptive_limit_and_its_value()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "adaptive-reject",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            MaxInFlight = 256,
            MaxQueueLength = 0,
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        // Learn the baseline from an unstalled server first: a window measured during a stall would become it.
        await WaitUntilAsync(
            async () =>
            {
                await Task.WhenAll(Enumerable.Range(0, 128).Select(i => db.StringGetAsync($"adaptive:{i}")));
                return pool.GetStatistics().InFlightLimitBaseline is not null;
            },
            "a baseline is measured");

        // Keep more than the floor in flight through stalls until a window sees the delay and the limit falls.
        RedisPoolStatistics? fallen = null;
        await WaitUntilAsync(
            async () =>
            {
                var stallOver = await StallAsync(TimeSpan.FromMilliseconds(300));
                var held = Enumerable.Range(0, 128).Select(i => db.StringGetAsync($"adaptive:{i}")).ToArray();
                await stallOver;
                await Task.WhenAll(held.Select(t => t.ContinueWith(static _ => { }, TaskScheduler.Default)));
                fallen = pool.GetStatistics();
                return fallen.InFlightLimit < 256;
            },
            "the limit falls while the server stalls");

        output.WriteLine($"the limit fell to {fallen!.InFlightLimit}");

        // Fill the fallen limit during one more stall; the next caller is refused at once and told why.
        var over = await StallAsync(TimeSpan.FromMilliseconds(300));
        var limit = pool.GetStatistics().InFlightLimit;
        var admitted = Enumerable.Range(0, limit).Select(i => db.StringGetAsync($"adaptive:{i}")).ToArray();
        var refused = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => db.StringGetAsync("adaptive:refused"));
        output.WriteLine(refused.Message);
        await over;
        await Task.WhenAll(admitted);

        Assert.Equal(RedisPoolExhaustedReason.QueueFull, refused.Reason);
        Assert.Contains($"in flight of the adaptive in-flight limit {limit}", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'MaxInFlight' 256", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'AdaptiveInFlight'", refused.Message, StringComparison.Ordinal);
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        using var deadline = new CancellationTokenSource(s_deadline);
        while (!await condition())
        {
            Assert.False(deadline.IsCancellationRequested, $"Not within {s_deadline.TotalSeconds:0} s: {what}.");
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }
    }
}
