using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>
/// MaxConnections per node against a real 3-master cluster, proven by CLIENT LIST on every node. One cluster for the
/// class; each test names its pool uniquely and leaves every node running.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterBudgetTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Every_node_sees_one_socket_per_multiplexer_and_statistics_list_each_node()
    {
        await using var pool = NewPool("perNode", maxConnections: 3, multiplexers: 3);
        await pool.ConnectAsync();
        await WriteAcrossSlotsAsync(pool);

        var counts = await SocketsPerNodeAsync("perNode");
        output.WriteLine("sockets per node: " + string.Join(", ", counts.Select(c => $"{c.Key}={c.Value}")));
        Assert.All(Cluster.Nodes, node => Assert.Equal(3, counts[Name(node)]));

        var statistics = pool.GetStatistics();
        Assert.Equal(Cluster.Nodes.Select(Name).Order(StringComparer.Ordinal), statistics.Nodes.Select(n => n.EndPoint));
        Assert.All(statistics.Nodes, node =>
        {
            Assert.Equal(RedisPoolNodeRole.Primary, node.Role);
            Assert.Equal(counts[node.EndPoint], node.Sockets);
            Assert.Equal(node.Sockets, node.MultiplexerSockets);
            Assert.Equal(RedisPoolCircuitState.Closed, node.CircuitState);
        });
        Assert.Equal(3, statistics.Sockets);
    }

    [Fact]
    public async Task A_new_multiplexer_needs_a_slot_on_every_known_node_and_fails_at_once_naming_the_full_one()
    {
        await using var pool = NewPool("fullNode", maxConnections: 2, multiplexers: 1);
        await pool.ConnectAsync();
        var full = Cluster.Nodes[2];

        // Something else of the pool holds this node's last slot: a second multiplexer would exceed it there.
        Assert.True(pool.Budget.TryReserve(Name(full), SocketRole.Lease));
        var elapsed = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => pool.Multiplexers.AddAsync("test", 2, CancellationToken.None));
        elapsed.Stop();
        output.WriteLine($"{elapsed.Elapsed.TotalMilliseconds:F1} ms: {refused.Message}");

        Assert.Equal(RedisPoolExhaustedReason.BudgetExhausted, refused.Reason);
        Assert.Contains(Name(full), refused.Message, StringComparison.Ordinal);
        Assert.Contains("'MaxConnections' (currently 2)", refused.Message, StringComparison.Ordinal);
        Assert.All(await SocketsPerNodeAsync("fullNode"), count => Assert.Equal(1, count.Value));
        var node = Assert.Single(pool.GetStatistics().Nodes, n => n.EndPoint == Name(full));
        Assert.Equal(2, node.Sockets);
        Assert.Equal(1, node.LeaseSockets);
        Assert.Equal(1, node.RejectedBudgetExhausted);
        pool.Budget.Release(Name(full), SocketRole.Lease);
    }

    [Fact]
    public async Task A_discovered_node_without_budget_gets_no_socket_from_StackExchange_Redis()
    {
        var seed = Cluster.Nodes[0];
        var full = Cluster.Nodes[1];
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "discover",
            ServiceName = "tests",
            Configuration = Name(seed),
            MaxConnections = 1,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });

        // The pool knows only the seed; the other nodes are found by StackExchange.Redis while connecting, and each
        // socket to them passes the pool's tunnel. The one for this node is refused.
        Assert.True(pool.Budget.TryReserve(Name(full), SocketRole.Lease));
        var failed = await Assert.ThrowsAsync<RedisPoolException>(() => pool.ConnectAsync());
        output.WriteLine(failed.Message);
        Assert.Contains($"refused the socket to {Name(full)}: no budget left there", failed.Message, StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => (await SocketsPerNodeAsync("discover")).Values.Sum() == 0, TimeSpan.FromSeconds(10), "the failed connect's sockets are closed");
        Assert.Equal(0, (await SocketsPerNodeAsync("discover"))[Name(full)]);

        pool.Budget.Release(Name(full), SocketRole.Lease);
        await pool.ConnectAsync();
        await WriteAcrossSlotsAsync(pool);
        Assert.All(await SocketsPerNodeAsync("discover"), count => Assert.Equal(1, count.Value));
        Assert.All(pool.GetStatistics().Nodes, node => Assert.Equal(1, node.Sockets));
    }

    [Fact]
    public async Task Reconnects_after_a_node_restart_stay_within_the_budget_on_every_node()
    {
        await using var pool = NewPool("restart", maxConnections: 3, multiplexers: 3);
        await pool.ConnectAsync();
        await WriteAcrossSlotsAsync(pool);
        var victim = Cluster.Nodes[1];

        var peaks = Cluster.Nodes.ToDictionary(Name, _ => 0);
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var node in Cluster.Nodes.Where(n => n.IsRunning))
                {
                    try
                    {
                        var mine = (await node.ClientListAsync()).Count(c => c.Name.Contains(":restart:", StringComparison.Ordinal));
                        peaks[Name(node)] = Math.Max(peaks[Name(node)], mine);
                    }
                    catch (Exception ex) when (ex is RedisException or IOException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
                    {
                        // The node is restarting.
                    }
                }

                await Task.Delay(10);
            }
        });

        await victim.KillAsync();
        await victim.RestartAsync();
        await Cluster.WaitUntilHealthyAsync();
        await Eventually.TrueAsync(
            async () => (await SocketsPerNodeAsync("restart"))[Name(victim)] == 3,
            TimeSpan.FromSeconds(60),
            "every multiplexer reconnects to the restarted node");
        var db = pool.GetDatabase();
        await Eventually.TrueAsync(
            async () =>
            {
                await WriteAcrossSlotsAsync(pool);
                return true;
            },
            TimeSpan.FromSeconds(30),
            "commands for every node complete again");
        await stop.CancelAsync();
        await sampler;

        output.WriteLine("peak sockets per node: " + string.Join(", ", peaks.Select(p => $"{p.Key}={p.Value}")));
        Assert.All(peaks, peak => Assert.InRange(peak.Value, 1, 3));
        Assert.All(await SocketsPerNodeAsync("restart"), count => Assert.Equal(3, count.Value));
        Assert.All(pool.GetStatistics().Nodes, node => Assert.Equal(3, node.Sockets));
    }

    private RedisPool NewPool(string name, int maxConnections, int multiplexers) => new(new RedisPoolOptions
    {
        Name = name,
        ServiceName = "tests",
        Configuration = Cluster.ConnectionString,
        MaxConnections = maxConnections,
        MinMultiplexers = multiplexers,
        MaxMultiplexers = multiplexers + 1,
        Leases = { MaxLeases = 0, MinIdle = 0 },
        Monitor = { Enabled = false },
    });

    private static string Name(RedisClusterNode node) => $"127.0.0.1:{node.Port}";

    private static async Task WriteAcrossSlotsAsync(RedisPool pool)
    {
        var db = pool.GetDatabase();
        for (var i = 0; i < 30; i++)
        {
            await db.StringSetAsync($"nodes:{i}", i);
        }
    }

    private async Task<Dictionary<string, int>> SocketsPerNodeAsync(string pool)
    {
        var counts = new Dictionary<string, int>();
        foreach (var node in Cluster.Nodes)
        {
            counts[Name(node)] = (await node.ClientListAsync()).Count(c => c.Name.Contains($":{pool}:", StringComparison.Ordinal));
        }

        return counts;
    }
}
