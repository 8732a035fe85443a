using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Pool;

[Collection(FaultCollection.Name)]
public sealed class LifecycleTests : StallableServer
{
    [Fact]
    public async Task The_first_command_connects_lazily()
    {
        await using var pool = new RedisPool(new RedisPoolOptions { Name = "lazy", ServiceName = "tests", Configuration = Server.ConnectionString });
        Assert.Equal(0, pool.GetStatistics().Sockets);

        Assert.True(await pool.GetDatabase().StringSetAsync("lazy", "1"));

        Assert.Equal(1, pool.GetStatistics().Sockets);
    }

    [Fact]
    public async Task Dispose_leaves_no_socket_on_theServer_and_later_calls_throw()
    {
        var pool = new RedisPool(new RedisPoolOptions { Name = "disposed", ServiceName = "tests", Configuration = Server.ConnectionString, MinMultiplexers = 2 });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        Assert.Equal(2, (await Server.ClientListAsync()).Count(c => c.Name.Contains(":disposed:", StringComparison.Ordinal)));

        await pool.DisposeAsync();

        await Eventually.TrueAsync(async () => !(await Server.ClientListAsync()).Any(c => c.Name.Contains(":disposed:", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the pool's sockets leave the server");
        Assert.Equal(0, pool.GetStatistics().Sockets);
        Assert.Throws<ObjectDisposedException>(() => pool.GetDatabase());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.ConnectAsync());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => db.StringGetAsync("x"));
        await pool.DisposeAsync();
    }

    [Fact]
    public async Task Dispose_is_bounded_by_the_grace_period_while_theServer_stalls()
    {
        var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "grace",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            ShutdownGracePeriod = TimeSpan.FromMilliseconds(300),
        });
        await pool.ConnectAsync();
        var stallOver = await StallAsync(TimeSpan.FromSeconds(2));
        var stuck = pool.GetDatabase().StringGetAsync("stuck");

        var disposal = await TimeDisposalAsync(pool);

        Assert.True(disposal < TimeSpan.FromSeconds(1.5), $"dispose took {disposal.TotalMilliseconds:F0} ms");
        await Assert.ThrowsAsync<RedisConnectionException>(() => stuck);
        await stallOver;
        await Eventually.TrueAsync(async () => !(await Server.ClientListAsync()).Any(c => c.Name.Contains(":grace:", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the pool's sockets leave the server");
    }

    [Fact]
    public async Task Connect_is_bounded_by_ConnectTimeout_and_names_endpoint_elapsed_and_cause()
    {
        // A listener that never accepts: the kernel completes the TCP handshake, nobody answers HELLO.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start(backlog: 16);
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "silent",
            ServiceName = "tests",
            Configuration = $"127.0.0.1:{port},password=hunter2-secret",
            ConnectTimeout = TimeSpan.FromMilliseconds(500),
        });

        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAnyAsync<RedisPoolException>(() => pool.ConnectAsync());
        watch.Stop();

        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(500 + 250 + 400), $"connect took {watch.ElapsedMilliseconds} ms");
        Assert.Contains($"127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
        Assert.Contains(" ms", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-secret", ex.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, pool.GetStatistics().InFlight);
    }

    [Fact]
    public async Task A_stuck_command_and_a_held_lease_share_one_grace_period()
    {
        var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "onegrace",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            ShutdownGracePeriod = TimeSpan.FromSeconds(1),
        });
        await pool.ConnectAsync();
        var lease = await pool.LeaseAsync();
        var stallOver = await StallAsync(TimeSpan.FromSeconds(4));
        var stuck = pool.GetDatabase().StringGetAsync("lifecycle:stuck");

        var disposal = await TimeDisposalAsync(pool);

        await Assert.ThrowsAsync<RedisConnectionException>(() => stuck);
        await stallOver;
        GC.KeepAlive(lease);
        Assert.True(disposal < TimeSpan.FromSeconds(1.6), $"dispose took {disposal.TotalMilliseconds:F0} ms with ShutdownGracePeriod 1 s");
    }

    [Fact]
    public async Task A_monitor_poll_stuck_on_a_stalled_server_does_not_hold_disposal()
    {
        var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "monpoll",
            ServiceName = "tests",
            Configuration = Server.ConnectionString,
            ShutdownGracePeriod = TimeSpan.FromMilliseconds(300),
            Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
        });
        await pool.ConnectAsync();
        await Eventually.TrueAsync(() => pool.GetStatistics().LastServerUtilization is not null, TimeSpan.FromSeconds(10), "the monitor's first reading");
        var stallOver = await StallAsync(TimeSpan.FromSeconds(4));

        // A poll is stuck once no reading has arrived for three poll intervals.
        await Eventually.TrueAsync(
            () => TimeProvider.System.GetUtcNow() - pool.GetStatistics().LastServerUtilization!.Value.Timestamp > TimeSpan.FromMilliseconds(300),
            TimeSpan.FromSeconds(3),
            "the monitor's poll to be held by the stalled server");

        var disposal = await TimeDisposalAsync(pool);

        await stallOver;
        Assert.True(disposal < TimeSpan.FromSeconds(1.5), $"dispose took {disposal.TotalMilliseconds:F0} ms with ShutdownGracePeriod 300 ms");
    }

    private static async Task<TimeSpan> TimeDisposalAsync(RedisPool pool)
    {
        var watch = Stopwatch.StartNew();
        await pool.DisposeAsync();
        return watch.Elapsed;
    }
}
