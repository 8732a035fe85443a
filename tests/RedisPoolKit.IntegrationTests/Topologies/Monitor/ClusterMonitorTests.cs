using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Monitor;

/// <summary>
/// The monitor against a real 3-master cluster: every master read over the pool's own socket to it, one node filled
/// near its maxclients sets the pool's level and names itself, the others report their own.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterMonitorTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(20);

    private RedisCluster Cluster => fixture.Cluster;

    private static string Node(RedisNode node) => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{node.Port}");

    private RedisPoolOptions Options(string name) => new()
    {
        Name = name,
        ServiceName = "tests",
        Configuration = Cluster.ConnectionString,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
    };

    /// <summary>What a cluster node counts against maxclients: its clients and its links to the other nodes.</summary>
    private static async Task<long> CountedClientsAsync(RedisNode node)
    {
        var info = await node.InfoAsync("clients");
        return long.Parse(info["connected_clients"], CultureInfo.InvariantCulture) + long.Parse(info["cluster_connections"], CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until the monitor has read every one of <paramref name="nodes"/> at least <paramref name="rounds"/> more times.</summary>
    private static Task WaitForReadingsAsync(RedisPool pool, IEnumerable<string> nodes, int rounds)
    {
        var seen = nodes.ToDictionary(node => node, _ => new HashSet<DateTimeOffset>());
        return Eventually.TrueAsync(() =>
        {
            foreach (var (node, reading) in pool.ServerUtilizationByNode)
            {
                if (seen.TryGetValue(node, out var timestamps))
                {
                    timestamps.Add(reading.Timestamp);
                }
            }

            return seen.Values.All(timestamps => timestamps.Count > rounds);
        }, s_deadline, $"{rounds} monitor readings of every node");
    }

    [Fact]
    public async Task One_master_near_its_maxclients_sets_the_pools_level_and_names_itself_while_the_others_report_their_own()
    {
        var masters = await Cluster.GetMastersAsync();
        Assert.Equal(3, masters.Count);
        var full = masters[1];
        var fullNode = Node(full);
        using var logs = new CapturingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        using var utilization = new MetricCollector<double>(null, RedisPoolInstrumentNames.MeterName, RedisPoolInstrumentNames.ServerUtilization);
        await using var pool = new RedisPool(Options("cluster-monitor"), loggerFactory);
        var events = new ConcurrentQueue<RedisServerUtilizationEventArgs>();
        pool.ServerUtilizationChanged += (_, e) => events.Enqueue(e);
        await pool.ConnectAsync();
        await pool.GetDatabase().StringSetAsync("cluster-monitor", "x");
        await WaitForReadingsAsync(pool, masters.Select(Node), 1);
        Assert.Equal(RedisServerUtilizationLevel.Normal, ((IServerUtilizationSource)pool).ServerUtilizationLevel);

        var sockets = new List<TcpClient>();
        try
        {
            // maxclients 20 on one master only, filled to 19 (95 %) with raw sockets; the others keep the default 10000.
            // A cluster node counts its links to the other nodes against maxclients too.
            await full.ConfigSetAsync("maxclients", "20");
            for (var counted = await CountedClientsAsync(full); counted < 19;)
            {
                var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
                sockets.Add(client);
                await client.ConnectAsync(full.EndPoint);
                var before = counted;
                await Eventually.TrueAsync(async () => (counted = await CountedClientsAsync(full)) > before, s_deadline, "the node to count the new socket");
            }

            await Eventually.TrueAsync(() => events.Any(e => e.Level == RedisServerUtilizationLevel.Critical), s_deadline, "the critical event");

            // Filling may pass a reading at Warning on the way; every event names the filled node, none another.
            Assert.All(events, e => Assert.Equal(fullNode, e.EndPoint));
            var critical = events.Last();
            Assert.Equal((fullNode, RedisServerUtilizationLevel.Critical), (critical.EndPoint, critical.Level));
            Assert.Equal(20, critical.Reading.MaxClients);
            Assert.Equal(RedisServerUtilizationLevel.Critical, ((IServerUtilizationSource)pool).ServerUtilizationLevel);
            Assert.Equal(fullNode, pool.GetStatistics().LastServerUtilization?.EndPoint);
            Assert.Contains(logs.Lines, line => line.EventId.Id == 301 && line.Text.Contains(fullNode, StringComparison.Ordinal) && line.Text.Contains("Critical", StringComparison.Ordinal));

            // The other masters report their own counts against their own maxclients, at their own level.
            var nodes = pool.ServerUtilizationByNode;
            foreach (var other in masters.Where(m => m != full).Select(Node))
            {
                Assert.Equal(10000, nodes[other].MaxClients);
                Assert.True(nodes[other].ConnectedClients < 100, $"{other}: {nodes[other]}");
                Assert.Equal(RedisServerUtilizationLevel.Normal, ((IServerUtilizationSource)pool).ServerUtilizationLevelOf(other));
            }

            // The gauge has one series per master, tagged with its address and port.
            utilization.RecordObservableInstruments();
            var series = utilization.GetMeasurementSnapshot()
                .Where(m => (string?)m.Tags[RedisPoolInstrumentNames.PoolNameTag] == "cluster-monitor")
                .GroupBy(m => (int)m.Tags[RedisPoolInstrumentNames.ServerPortTag]!)
                .ToDictionary(g => g.Key, g => g.Last());
            Assert.Equal(masters.Select(m => m.Port).Order(), series.Keys.Order());
            Assert.All(series.Values, m => Assert.Equal("127.0.0.1", m.Tags[RedisPoolInstrumentNames.ServerAddressTag]));
            Assert.True(series[full.Port].Value >= 0.95, $"{fullNode}: {series[full.Port].Value}");
            Assert.All(series.Where(s => s.Key != full.Port), s => Assert.True(s.Value.Value < 0.01, $"{s.Key}: {s.Value.Value}"));

            // Health names the worst node and lists them all, worst first.
            var health = await new RedisPoolHealthCheck(pool, TimeProvider.System).CheckHealthAsync(new HealthCheckContext());
            output.WriteLine($"{health.Status}: {health.Description} | {health.Data["server_nodes"]}");
            Assert.Equal(HealthStatus.Degraded, health.Status);
            Assert.Contains($"Critical on {fullNode}", health.Description, StringComparison.Ordinal);
            Assert.Equal(fullNode, health.Data["server_endpoint"]);
            var listed = ((string)health.Data["server_nodes"]).Split("; ");
            Assert.Equal(3, listed.Length);
            Assert.StartsWith($"{fullNode} Critical ", listed[0], StringComparison.Ordinal);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            await full.ConfigSetAsync("maxclients", "10000");
        }

        await Eventually.TrueAsync(() => events.Last().Level == RedisServerUtilizationLevel.Normal, s_deadline, "the node's return to normal");
        Assert.All(events, e => Assert.Equal(fullNode, e.EndPoint));
        Assert.Equal(RedisServerUtilizationLevel.Normal, ((IServerUtilizationSource)pool).ServerUtilizationLevel);
    }

    [Fact]
    public async Task The_monitor_reads_every_master_over_the_pools_own_sockets_and_opens_none()
    {
        var masters = await Cluster.GetMastersAsync();
        await using var pool = new RedisPool(Options("cluster-monitor-sockets"));
        await pool.ConnectAsync();
        await pool.GetDatabase().StringSetAsync("cluster-monitor-sockets", "x");
        await WaitForReadingsAsync(pool, masters.Select(Node), 1);

        // From here on no node may accept a connection: the harness's admin socket is already open, the pool's
        // multiplexer sockets too. Several more readings of every node must not add to total_connections_received.
        var before = new Dictionary<RedisNode, long>();
        foreach (var node in masters)
        {
            before[node] = long.Parse((await node.InfoAsync("stats"))["total_connections_received"], CultureInfo.InvariantCulture);
        }

        await WaitForReadingsAsync(pool, masters.Select(Node), 3);

        foreach (var node in masters)
        {
            var accepted = long.Parse((await node.InfoAsync("stats"))["total_connections_received"], CultureInfo.InvariantCulture);
            Assert.True(accepted == before[node], $"{Node(node)} accepted {accepted - before[node]} connections while the monitor read it");

            // The pool's sockets on the node are its multiplexer's, one per multiplexer, and no monitor socket among them.
            var ours = (await node.ClientListAsync()).Where(c => c.Name.Contains(":cluster-monitor-sockets:", StringComparison.Ordinal)).ToList();
            output.WriteLine($"{Node(node)}: {string.Join(", ", ours.Select(c => $"{c.Name} cmd={c.LastCommand}"))}");
            Assert.NotEmpty(ours);
            Assert.DoesNotContain(ours, c => c.Name.Contains(":mon", StringComparison.Ordinal));
            Assert.Equal(pool.GetStatistics().Multiplexers, ours.Count(c => c.Name.Contains(":mux", StringComparison.Ordinal)));
        }

        Assert.Equal(masters.Select(Node).Order(StringComparer.Ordinal), pool.ServerUtilizationByNode.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_master_that_goes_down_keeps_its_last_reading_while_the_others_are_still_read_and_is_read_again_when_back()
    {
        var masters = await Cluster.GetMastersAsync();
        var down = masters[2];
        var downNode = Node(down);
        var others = masters.Where(m => m != down).Select(Node).ToList();
        // The node refuses connections while down; that is the breaker's business, not this test's.
        var options = Options("cluster-monitor-down");
        options.Breaker.TripOnConnectFailures = false;
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        await WaitForReadingsAsync(pool, masters.Select(Node), 1);

        await down.KillAsync();
        try
        {
            await Eventually.TrueAsync(() => !pool.Multiplexers.Entries.Any(e => e.Multiplexer.GetServer(down.EndPoint).IsConnected), s_deadline, "the pool to see the node down");
            var last = pool.ServerUtilizationByNode[downNode];
            await WaitForReadingsAsync(pool, others, 3);

            Assert.Equal(last, pool.ServerUtilizationByNode[downNode]);
            Assert.Equal(RedisServerUtilizationLevel.Normal, ((IServerUtilizationSource)pool).ServerUtilizationLevel);
        }
        finally
        {
            await down.RestartAsync();
            await Cluster.WaitUntilHealthyAsync();
        }

        await WaitForReadingsAsync(pool, [downNode], 2);
    }
}
