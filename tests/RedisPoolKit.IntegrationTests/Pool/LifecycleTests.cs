using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Pool;

public sealed class LifecycleTests : IAsyncLifetime
{
    private RedisServer _server = null!;

    public async Task InitializeAsync()
    {
        var options = new RedisServerOptions();
        options.Arguments.Add("--enable-debug-command");
        options.Arguments.Add("local");
        _server = await RedisServer.StartAsync(options);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_first_command_connects_lazily()
    {
        await using var pool = new RedisPool(new RedisPoolOptions { Name = "lazy", ServiceName = "tests", Configuration = _server.ConnectionString });
        Assert.Equal(0, pool.GetStatistics().Sockets);

        Assert.True(await pool.GetDatabase().StringSetAsync("lazy", "1"));

        Assert.Equal(1, pool.GetStatistics().Sockets);
    }

    [Fact]
    public async Task Dispose_leaves_no_socket_on_the_server_and_later_calls_throw()
    {
        var pool = new RedisPool(new RedisPoolOptions { Name = "disposed", ServiceName = "tests", Configuration = _server.ConnectionString, MinMultiplexers = 2 });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        Assert.Equal(2, (await _server.ClientListAsync()).Count(c => c.Name.Contains(":disposed:", StringComparison.Ordinal)));

        await pool.DisposeAsync();

        await Eventually(async () => !(await _server.ClientListAsync()).Any(c => c.Name.Contains(":disposed:", StringComparison.Ordinal)));
        Assert.Equal(0, pool.GetStatistics().Sockets);
        Assert.Throws<ObjectDisposedException>(() => pool.GetDatabase());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.ConnectAsync());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => db.StringGetAsync("x"));
        await pool.DisposeAsync();
    }

    [Fact]
    public async Task Dispose_is_bounded_by_the_grace_period_while_the_server_stalls()
    {
        var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "grace",
            ServiceName = "tests",
            Configuration = _server.ConnectionString,
            ShutdownGracePeriod = TimeSpan.FromMilliseconds(300),
        });
        await pool.ConnectAsync();
        var sleep = _server.Admin.GetServer(_server.EndPoint).ExecuteAsync("DEBUG", "SLEEP", "2");
        await Task.Delay(50);
        var stuck = pool.GetDatabase().StringGetAsync("stuck");

        var watch = Stopwatch.StartNew();
        await pool.DisposeAsync();
        watch.Stop();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"dispose took {watch.ElapsedMilliseconds} ms");
        await Assert.ThrowsAnyAsync<Exception>(() => stuck);
        await sleep;
        await Eventually(async () => !(await _server.ClientListAsync()).Any(c => c.Name.Contains(":grace:", StringComparison.Ordinal)));
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

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "condition not met within 10 s");
            await Task.Delay(50);
        }
    }
}
