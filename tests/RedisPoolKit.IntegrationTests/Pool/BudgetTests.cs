using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Pool;

public sealed class BudgetTests : IAsyncLifetime
{
    private RedisServer _server = null!;

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_server_never_sees_more_sockets_than_MaxConnections_under_256_callers()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "budget",
            ServiceName = "tests",
            Configuration = _server.ConnectionString,
            MaxConnections = 4,
            MinMultiplexers = 2,
            MaxMultiplexers = 4,
            MaxInFlight = 64,
            MaxQueueLength = 512,
            QueueTimeout = TimeSpan.FromSeconds(10),
        });
        var prefix = "tests:";
        var peakOnServer = 0;
        var peakInPool = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var mine = (await _server.ClientListAsync()).Count(c => c.Name.StartsWith(prefix, StringComparison.Ordinal) && c.Name.Contains(":budget:", StringComparison.Ordinal));
                peakOnServer = Math.Max(peakOnServer, mine);
                peakInPool = Math.Max(peakInPool, pool.GetStatistics().Sockets);
                await Task.Delay(5);
            }
        });

        var db = pool.GetDatabase();
        await Task.WhenAll(Enumerable.Range(0, 256).Select(async caller =>
        {
            for (var i = 0; i < 50; i++)
            {
                await db.StringSetAsync($"budget:{caller}", i);
                await db.StringGetAsync($"budget:{caller}");
            }
        }));
        await stop.CancelAsync();
        await sampler;

        var statistics = pool.GetStatistics();
        var onServer = (await _server.ClientListAsync()).Count(c => c.Name.Contains(":budget:", StringComparison.Ordinal));
        Assert.InRange(peakOnServer, 1, 4);
        Assert.InRange(peakInPool, 1, 4);
        Assert.Equal(statistics.Sockets, onServer);
        Assert.Equal(0, statistics.InFlight);
    }

    [Fact]
    public async Task Every_socket_is_named_for_attribution()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "named",
            ServiceName = "order-service",
            InstanceId = "pod-7",
            Configuration = _server.ConnectionString,
        });
        await pool.ConnectAsync();

        var clients = await _server.ClientListAsync();

        var mine = Assert.Single(clients, c => c.Name.StartsWith("order-service:pod-7:named:", StringComparison.Ordinal));
        Assert.Equal("order-service:pod-7:named:mux0", mine.Name);
    }
}
