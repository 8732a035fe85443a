using System.Globalization;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Monitor;

/// <summary>A cluster of 3 masters with one replica each, for the class.</summary>
public sealed class ClusterWithReplicasFixture : IAsyncLifetime
{
    private RedisCluster? _cluster;

    public RedisCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    public async Task InitializeAsync() => _cluster = await RedisCluster.StartAsync(new RedisClusterOptions { ReplicasPerMaster = 1 });

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>
/// The monitor reads exactly the nodes the pool holds a socket on: every master, and a replica because (and only
/// if) the pool's multiplexer keeps a socket on it, which counts against that replica's maxclients.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterReplicaMonitorTests(ClusterWithReplicasFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterWithReplicasFixture>
{
    [Fact]
    public async Task Every_node_with_a_pool_socket_is_read_and_no_other()
    {
        var cluster = fixture.Cluster;
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "replica-monitor",
            ServiceName = "tests",
            Configuration = cluster.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
        });
        await pool.ConnectAsync();
        await pool.GetDatabase().StringSetAsync("replica-monitor", "x");
        var masters = (await cluster.GetMastersAsync()).Select(m => m.Port).ToHashSet();
        await Eventually.TrueAsync(
            () => masters.All(port => pool.ServerUtilizationByNode.ContainsKey(string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}"))),
            TimeSpan.FromSeconds(20),
            "a reading of every master");

        // Nodes holding a pool socket, per CLIENT LIST on each node.
        var withSocket = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in cluster.Nodes)
        {
            if ((await node.ClientListAsync()).Any(c => c.Name.Contains(":replica-monitor:mux", StringComparison.Ordinal)))
            {
                withSocket.Add(string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{node.Port}"));
            }
        }

        // Give the monitor two more rounds so that every node it will ever read has been read.
        var rounds = pool.Monitor!.Nodes.Values.Min(r => r.Timestamp);
        await Eventually.TrueAsync(() => pool.ServerUtilizationByNode.Values.Min(r => r.Timestamp) > rounds.AddMilliseconds(200), TimeSpan.FromSeconds(20), "two more rounds");

        var read = pool.ServerUtilizationByNode.Keys.ToHashSet(StringComparer.Ordinal);
        output.WriteLine($"pool sockets on: {string.Join(", ", withSocket.Order())}; read: {string.Join(", ", read.Order())}");
        Assert.Equal(withSocket.Order(StringComparer.Ordinal), read.Order(StringComparer.Ordinal));
        Assert.Superset(masters.Select(port => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}")).ToHashSet(StringComparer.Ordinal), read);
    }
}
