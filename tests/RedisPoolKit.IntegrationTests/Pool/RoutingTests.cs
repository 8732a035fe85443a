using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>Every routed command releases its admission permit exactly once, before its caller sees the outcome.</summary>
public sealed class RoutingTests : IAsyncLifetime
{
    private RedisServer _server = null!;
    private RedisPool _pool = null!;

    public async Task InitializeAsync()
    {
        _server = await RedisServer.StartAsync();

        // Two permits for a hundred callers: most commands take the queued path.
        _pool = new RedisPool(new RedisPoolOptions
        {
            Name = "routing",
            Configuration = _server.ConnectionString,
            ServiceName = "tests",
            MaxInFlight = 2,
            MaxQueueLength = 256,
            QueueTimeout = TimeSpan.FromSeconds(30),
        });
        await _pool.ConnectAsync();
    }

    public async Task DisposeAsync()
    {
        await _pool.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Admitted_and_queued_commands_that_succeed_or_fault_all_release_before_their_callers_resume()
    {
        var db = _pool.GetDatabase();
        await db.StringSetAsync("routing:value", "v");
        await db.StringSetAsync("routing:not-a-number", "x");

        var commands = Enumerable.Range(0, 100).Select(async i =>
        {
            if (i % 4 == 0)
            {
                await Assert.ThrowsAsync<RedisServerException>(() => db.StringIncrementAsync("routing:not-a-number"));
                await Assert.ThrowsAsync<RedisServerException>(() => db.KeyMigrateAsync("routing:value", _pool.Multiplexer.GetEndPoints()[0], 0, 1));
            }
            else
            {
                Assert.Equal("v", (string?)await db.StringGetAsync("routing:value"));
            }
        });
        await Task.WhenAll(commands);

        var statistics = _pool.GetStatistics();
        Assert.Equal(0, statistics.InFlight);
        Assert.Equal(0, statistics.Queued);
    }
}
