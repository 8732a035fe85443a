using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Pool;

[Collection(FaultCollection.Name)]
public sealed class LifecycleTests : StallableServer
{
    /// <summary>What a starved 2-core machine may add to a bound: timers and continuations run seconds late there.</summary>
    private static readonly TimeSpan s_loadMargin = TimeSpan.FromSeconds(3);

    /// <summary>The grace period a stuck command and a held lease share: two of them would exceed one + <see cref="s_loadMargin"/>.</summary>
    private static readonly TimeSpan s_onegrace = TimeSpan.FromSeconds(4);

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
        var stallOver = await StallAsync(TimeSpan.FromSeconds(5));
        var stuck = pool.GetDatabase().StringGetAsync("stuck");

        var disposal = await TimeDisposalAsync(pool);

        // The grace period + 3 s for a starved 2-core machine, still short of the 5 s stall it must not wait out.
        Assert.True(disposal < TimeSpan.FromMilliseconds(300) + s_loadMargin, $"dispose took {disposal.TotalMilliseconds:F0} ms");
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

        // ConnectTimeout + the factory's 250 ms slack + 3 s for a starved 2-core machine (the first connect of the
        // process also pays for JIT): still short of the 5 s StackExchange.Redis would wait on its own.
        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(500 + 250) + s_loadMargin, $"connect took {watch.ElapsedMilliseconds} ms");
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
            ShutdownGracePeriod = s_onegrace,
        });
        await pool.ConnectAsync();
        var lease = await pool.LeaseAsync();
        var stallOver = await StallAsync(TimeSpan.FromSeconds(10));
        var stuck = pool.GetDatabase().StringGetAsync("lifecycle:stuck");

        var disposal = await TimeDisposalAsync(pool);

        await Assert.ThrowsAsync<RedisConnectionException>(() => stuck);
        await stallOver;
        GC.KeepAlive(lease);
        // One grace period for both, not one each (8 s) nor the 10 s stall: the grace period is long enough that the
        // margin for a starved machine cannot blur the two.
        Assert.True(disposal < s_onegrace + s_loadMargin, $"dispose took {disposal.TotalMilliseconds:F0} ms with ShutdownGracePeriod {s_onegrace.TotalSeconds:F0} s");
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
            TimeSpan.FromSeconds(15),
            "the monitor's poll to be held by the stalled server");

        var disposal = await TimeDisposalAsync(pool);

        await stallOver;
        // The grace period + 3 s for a starved 2-core machine, still short of the 4 s stall it must not wait out.
        Assert.True(disposal < TimeSpan.FromMilliseconds(300) + s_loadMargin, $"dispose took {disposal.TotalMilliseconds:F0} ms with ShutdownGracePeriod 300 ms");
    }

    private static async Task<TimeSpan> TimeDisposalAsync(RedisPool pool)
    {
        var watch = Stopwatch.StartNew();
        await pool.DisposeAsync();
        return watch.Elapsed;
    }
}
