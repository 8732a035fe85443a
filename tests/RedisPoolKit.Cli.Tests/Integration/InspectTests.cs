using System.Text.Json;
using RedisPoolKit.Cli.Redis;
using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

public sealed class InspectTests : IAsyncLifetime
{
    private RedisServer _server = null!;

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private RedisPool Pool(string service, string instance, string name, int multiplexers) => new(new RedisPoolOptions
    {
        Name = name,
        ServiceName = service,
        InstanceId = instance,
        Configuration = _server.ConnectionString,
        MinMultiplexers = multiplexers,
        MaxMultiplexers = multiplexers,
    });

    [Fact]
    public async Task Groups_real_pool_sockets_as_CLIENT_LIST_counts_them()
    {
        await using var ordersCache1 = Pool("orders", "pod-1", "cache", 2);
        await using var ordersCache2 = Pool("orders", "pod-2", "cache", 1);
        await using var billing = Pool("billing", "pod-1", "default", 1);
        await Task.WhenAll(ordersCache1.ConnectAsync(), ordersCache2.ConnectAsync(), billing.ConnectAsync());
        await using var raw = new RawClients(_server);
        await raw.OpenAsync();
        await raw.OpenAsync();

        var result = await Redispool.RunAsync("inspect", _server.ConnectionString, "--json");
        var list = await _server.ClientListAsync();

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json();
        int OnServer(string prefix) => list.Count(c => c.Name.StartsWith(prefix, StringComparison.Ordinal));
        var services = json.GetProperty("services").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!, s => s);
        Assert.Equal(["billing", "orders"], services.Keys.Order());
        Assert.Equal(OnServer("orders:"), services["orders"].GetProperty("connections").GetInt32());
        Assert.Equal(OnServer("billing:"), services["billing"].GetProperty("connections").GetInt32());
        Assert.True(OnServer("orders:") >= 3, "the orders pools hold at least their three multiplexers");
        var instances = services["orders"].GetProperty("instances").EnumerateArray().ToDictionary(i => i.GetProperty("name").GetString()!, i => i.GetProperty("connections").GetInt32());
        Assert.Equal(OnServer("orders:pod-1:cache:"), instances["pod-1"]);
        Assert.Equal(OnServer("orders:pod-2:cache:"), instances["pod-2"]);
        var muxRole = services["orders"].GetProperty("instances")[0].GetProperty("pools")[0].GetProperty("roles").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "mux");
        Assert.Equal(OnServer("orders:pod-1:cache:mux"), muxRole.GetProperty("connections").GetInt32());

        // Every socket the pools named parses back to the pool that opened it.
        foreach (var client in list.Where(c => c.Name.StartsWith("orders:", StringComparison.Ordinal) || c.Name.StartsWith("billing:", StringComparison.Ordinal)))
        {
            Assert.True(PoolClientName.TryParse(client.Name, out var name), client.Name);
            Assert.Contains((name.Service, name.Instance, name.Pool), new[] { ("orders", "pod-1", "cache"), ("orders", "pod-2", "cache"), ("billing", "pod-1", "default") });
        }

        var server = json.GetProperty("servers")[0];
        Assert.Equal(_server.Port, int.Parse(server.GetProperty("endpoint").GetString()!.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture));
        var unnamed = server.GetProperty("unnamed").EnumerateArray().Single(u => u.GetProperty("host").GetString() == "127.0.0.1");
        Assert.Equal(list.Count(c => c.Name.Length == 0), unnamed.GetProperty("connections").GetInt32());
        Assert.Equal(0, json.GetProperty("unseen").GetArrayLength());
        Assert.Equal("ok", json.GetProperty("level").GetString());
        Assert.Equal(10000, json.GetProperty("maxclients").GetInt64());
        var connected = json.GetProperty("connected_clients").GetInt64();
        Assert.InRange(connected, list.Count - 2, list.Count + 2);
        Assert.Equal((double)connected / 10000, json.GetProperty("utilization").GetDouble(), 6);
        Assert.Contains(server.GetProperty("top_holders").EnumerateArray(), h => h.GetProperty("name").GetString() == "orders:pod-1" && h.GetProperty("kind").GetString() == "instance");
        Assert.DoesNotContain(server.GetProperty("top_holders").EnumerateArray(), h => h.GetProperty("name").GetString()!.StartsWith("redispool-cli-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Prints_the_groups_as_a_tree_and_tables()
    {
        await using var pool = Pool("orders", "pod-9", "cache", 1);
        await pool.ConnectAsync();

        var result = await Redispool.RunAsync("inspect", _server.ConnectionString);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("connected_clients / maxclients", result.Output, StringComparison.Ordinal);
        Assert.Contains("orders", result.Output, StringComparison.Ordinal);
        Assert.Contains("pod-9", result.Output, StringComparison.Ordinal);
        Assert.Contains("mux: 1", result.Output, StringComparison.Ordinal);
        Assert.Contains(RedisServer.AdminClientName, result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_is_one_line_on_stderr_and_exit_code_2()
    {
        var port = _server.Port;
        await _server.StopAsync();

        var result = await Redispool.RunAsync("inspect", $"127.0.0.1:{port},connectTimeout=2000");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("redispool: Could not connect to 127.0.0.1:" + port, result.Error, StringComparison.Ordinal);
        Assert.Contains("nothing accepted a TCP connection", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
        Assert.Empty(result.Output);
    }
}
