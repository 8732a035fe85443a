using Microsoft.Extensions.Time.Testing;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>The multiplexer set stays within its bounds under racing warm-ups, and scale-in closes nothing in use.</summary>
public sealed class ScalingTests : IAsyncLifetime
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    private RedisServer _server = null!;

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Concurrent_warm_ups_never_open_more_than_MaxMultiplexers()
    {
        await using var pool = new RedisPool(Options("warmups", minMultiplexers: 2, maxMultiplexers: 2));

        await Task.WhenAll(pool.ConnectAsync(), pool.ConnectAsync(), pool.ConnectAsync());

        var statistics = pool.GetStatistics();
        Assert.Equal(2, statistics.Multiplexers);
        Assert.Equal(2, statistics.MultiplexerSockets);
    }

    [Fact]
    public async Task A_database_number_below_minus_one_is_refused_before_it_can_take_a_permit()
    {
        var options = Options("baddb", minMultiplexers: 1, maxMultiplexers: 1);
        options.MaxInFlight = 2;
        await using var pool = new RedisPool(options);

        Assert.Throws<ArgumentOutOfRangeException>(() => pool.GetDatabase(-2));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Multiplexer.GetDatabase(-3));

        var db = pool.GetDatabase(1);
        await db.StringSetAsync("scaling:db1", "1");
        Assert.Equal("1", (string?)await db.StringGetAsync("scaling:db1"));
        Assert.Equal(0, pool.GetStatistics().InFlight);
    }

    [Fact]
    public async Task Scans_batches_and_transactions_run_on_the_oldest_member_so_scale_in_never_closes_them()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var pool = new RedisPool(Options("scalein", minMultiplexers: 1, maxMultiplexers: 2), loggerFactory: null, time, meterFactory: null);
        await pool.ConnectAsync();
        var set = pool.Multiplexers;
        var oldest = set.Entries[0];

        // The only member looks saturated by the pool's own count for a second: the pool adds one.
        for (var i = 0; i < MultiplexerScaler.SaturationOutstanding; i++)
        {
            oldest.Enter();
        }

        set.Scaler.NoteLoad(oldest);
        time.Advance(MultiplexerScaler.SaturationPeriod);
        set.Scaler.NoteLoad(oldest);
        await Eventually.TrueAsync(() => Task.FromResult(set.Count == 2), s_deadline, "the saturated pool adds a second multiplexer");

        // Routing now prefers the new, least busy member; work that outlives its call must not land there.
        var db = pool.GetDatabase();
        for (var i = 0; i < 200; i++)
        {
            await db.HashSetAsync("scaling:hash", $"f{i}", i);
        }

        var batch = db.CreateBatch();
        var transaction = db.CreateTransaction();
        using var scan = db.HashScan("scaling:hash", pageSize: 10).GetEnumerator();
        Assert.True(scan.MoveNext());

        for (var i = 0; i < MultiplexerScaler.SaturationOutstanding; i++)
        {
            oldest.Exit();
        }

        time.Advance(MultiplexerScaler.ScaleInIdle + MultiplexerScaler.MaintenanceInterval);
        await Eventually.TrueAsync(() => Task.FromResult(set.Count == 1 && pool.GetStatistics().MultiplexerSockets == 1), s_deadline, "the idle newest member is retired and closed");
        Assert.Same(oldest, set.Entries[0]);

        var read = 1;
        while (scan.MoveNext())
        {
            read++;
        }

        Assert.Equal(200, read);
        var batched = batch.StringSetAsync("scaling:batched", "1");
        batch.Execute();
        Assert.True(await batched);
        var transacted = transaction.StringSetAsync("scaling:transacted", "1");
        Assert.True(await transaction.ExecuteAsync());
        Assert.True(await transacted);
    }

    [Fact]
    public async Task While_the_oldest_member_reconnects_a_batch_goes_to_a_connected_one()
    {
        await using var pool = new RedisPool(Options("reconnecting", minMultiplexers: 2, maxMultiplexers: 2));
        await pool.ConnectAsync();
        var oldest = pool.Multiplexers.Entries[0];
        var clientId = (long)await oldest.Multiplexer.GetDatabase().ExecuteAsync("CLIENT", "ID");

        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        oldest.Multiplexer.ConnectionFailed += (_, _) => failed.TrySetResult();

        await _server.Admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "ID", clientId);
        await failed.Task.WaitAsync(s_deadline);

        // StackExchange.Redis reconnects on its next heartbeat; until then the oldest would fail fast.
        var batch = pool.GetDatabase().CreateBatch();
        var set = batch.StringSetAsync("scaling:reconnecting", "1");
        batch.Execute();
        Assert.True(await set);
    }

    private RedisPoolOptions Options(string name, int minMultiplexers, int maxMultiplexers) => new()
    {
        Name = name,
        Configuration = _server.ConnectionString,
        ServiceName = "tests",
        MinMultiplexers = minMultiplexers,
        MaxMultiplexers = maxMultiplexers,
        MaxConnections = 8,
    };
}
