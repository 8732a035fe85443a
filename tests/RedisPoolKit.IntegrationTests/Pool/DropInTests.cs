using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>Existing code written against IConnectionMultiplexer/IDatabase runs unchanged on the pool's facade.</summary>
public sealed class DropInTests : IAsyncLifetime
{
    private RedisServer _server = null!;
    private RedisPool _pool = null!;

    public async Task InitializeAsync()
    {
        _server = await RedisServer.StartAsync();
        _pool = new RedisPool(new RedisPoolOptions { Name = "dropin", Configuration = _server.ConnectionString, ServiceName = "tests" });
    }

    public async Task DisposeAsync()
    {
        await _pool.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Existing_code_runs_unchanged_on_the_facade()
    {
        await ExerciseAsync(_pool.Multiplexer);
    }

    [Fact]
    public async Task The_facade_still_works_after_someone_disposes_it()
    {
        var facade = _pool.Multiplexer;
        await facade.GetDatabase().StringSetAsync("before", "1");

        facade.Dispose();
        await facade.DisposeAsync();
        facade.Close();

        await ExerciseAsync(facade);
        Assert.True(_pool.Multiplexer.IsConnected);
    }

    [Fact]
    public void The_sync_api_runs_through_the_pool()
    {
        var db = _pool.GetDatabase();
        db.StringSet("sync:key", "value");

        Assert.Equal("value", db.StringGet("sync:key"));
        Assert.Equal(0, _pool.GetStatistics().InFlight);
    }

    private static async Task ExerciseAsync(IConnectionMultiplexer multiplexer)
    {
        var db = multiplexer.GetDatabase();
        var prefix = Guid.NewGuid().ToString("N");

        // Strings
        Assert.True(await db.StringSetAsync($"{prefix}:s", "v", TimeSpan.FromMinutes(1)));
        Assert.Equal("v", await db.StringGetAsync($"{prefix}:s"));
        Assert.Equal(5, await db.StringIncrementAsync($"{prefix}:n", 5));

        // Hashes
        await db.HashSetAsync($"{prefix}:h", [new HashEntry("a", 1), new HashEntry("b", 2)]);
        Assert.Equal(2, (await db.HashGetAllAsync($"{prefix}:h")).Length);

        // Lists
        await db.ListRightPushAsync($"{prefix}:l", ["x", "y", "z"]);
        Assert.Equal("x", await db.ListLeftPopAsync($"{prefix}:l"));
        Assert.Equal(2, await db.ListLengthAsync($"{prefix}:l"));

        // Sorted sets
        await db.SortedSetAddAsync($"{prefix}:z", [new SortedSetEntry("low", 1), new SortedSetEntry("high", 9)]);
        Assert.Equal("high", (await db.SortedSetRangeByRankAsync($"{prefix}:z", 0, 0, Order.Descending))[0]);

        // Lua
        var result = await db.ScriptEvaluateAsync("return redis.call('GET', KEYS[1])", [(RedisKey)$"{prefix}:s"]);
        Assert.Equal("v", (string?)result);

        // Transactions with conditions, written the way existing (pre-8.4) code writes them.
#pragma warning disable SER300, SER301
        var tx = db.CreateTransaction();
        tx.AddCondition(Condition.StringEqual($"{prefix}:s", "v"));
        _ = tx.StringSetAsync($"{prefix}:s", "w");
        Assert.True(await tx.ExecuteAsync());
        var failing = db.CreateTransaction();
        failing.AddCondition(Condition.KeyNotExists($"{prefix}:s"));
        _ = failing.StringSetAsync($"{prefix}:s", "never");
        Assert.False(await failing.ExecuteAsync());
#pragma warning restore SER300, SER301
        Assert.Equal("w", await db.StringGetAsync($"{prefix}:s"));

        // Batches
        var batch = db.CreateBatch();
        var first = batch.StringSetAsync($"{prefix}:b1", "1");
        var second = batch.StringGetAsync($"{prefix}:s");
        batch.Execute();
        Assert.True(await first);
        Assert.Equal("w", await second);

        // Pub/sub
        var subscriber = multiplexer.GetSubscriber();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var channel = RedisChannel.Literal($"{prefix}:ch");
        await subscriber.SubscribeAsync(channel, (_, message) => received.TrySetResult(message!));
        await subscriber.PublishAsync(channel, "hello");
        Assert.Equal("hello", await received.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        await subscriber.UnsubscribeAsync(channel);
    }
}
