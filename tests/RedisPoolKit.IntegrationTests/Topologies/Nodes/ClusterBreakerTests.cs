using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>One cluster node at maxclients while the others serve: the breaker is per node.</summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterBreakerTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(1);

    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task A_full_node_opens_its_own_breaker_fails_its_commands_fast_and_the_others_keep_serving()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "fullMaster",
            ServiceName = "tests",
            Configuration = Cluster.ConnectionString,
            MaxConnections = 4,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Breaker = { BreakDuration = BreakDuration, MaxBreakDuration = BreakDuration },
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        var full = Cluster.Nodes[1];
        var node = $"127.0.0.1:{full.Port}";
        var keys = new Dictionary<RedisClusterNode, string>();
        for (var i = 0; keys.Count < Cluster.Nodes.Count; i++)
        {
            keys.TryAdd(await Cluster.GetKeyOwnerAsync($"breaker:{i}"), $"breaker:{i}");
        }

        foreach (var key in keys.Values)
        {
            await db.StringSetAsync(key, "before");
        }

        // The node becomes full (maxclients = its clients now), then loses the pool's socket.
        var connected = (await full.InfoAsync("clients"))["connected_clients"];
        await full.ExecuteAsync("CONFIG", "SET", "maxclients", connected);
        try
        {
            foreach (var client in (await full.ClientListAsync()).Where(c => c.Name.Contains(":fullMaster:", StringComparison.Ordinal)))
            {
                await full.ExecuteAsync("CLIENT", "KILL", "ID", client.Id.ToString(CultureInfo.InvariantCulture));
            }

            await Eventually.TrueAsync(
                () => Task.FromResult(pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState != RedisPoolCircuitState.Closed),
                TimeSpan.FromSeconds(15),
                "the full node's breaker opens");

            // Counted from here: attempts StackExchange.Redis made before the breaker opened are not the breaker's.
            var before = await RejectedAsync(full);
            var window = Stopwatch.StartNew();

            var statistics = pool.GetStatistics();
            Assert.Equal(RedisPoolCircuitState.Closed, statistics.CircuitState);
            Assert.All(statistics.Nodes.Where(n => n.EndPoint != node), n => Assert.Equal(RedisPoolCircuitState.Closed, n.CircuitState));

            // Commands for the other nodes keep completing; for the full node they fail at once, naming it.
            var slowest = TimeSpan.Zero;
            var failedFast = 0;
            for (var round = 0; round < 20; round++)
            {
                foreach (var (owner, key) in keys)
                {
                    if (owner == full)
                    {
                        var started = Stopwatch.StartNew();
                        var refused = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => db.StringSetAsync(key, round));
                        slowest = started.Elapsed > slowest ? started.Elapsed : slowest;
                        Assert.Contains(node, refused.Message, StringComparison.Ordinal);
                        failedFast++;
                    }
                    else
                    {
                        await db.StringSetAsync(key, round);
                    }
                }

                await Task.Delay(100);
            }

            var rest = TimeSpan.FromSeconds(4) - window.Elapsed;
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest);
            }

            // The breaker probes the node (about one connect per break); a starved machine may run that timer late, so
            // wait for the first probe rather than assume it fell inside the window.
            var rejected = 0L;
            await Eventually.TrueAsync(async () => (rejected = await RejectedAsync(full) - before) >= 1, TimeSpan.FromSeconds(15), "the breaker to probe the full node");
            var counted = window.Elapsed;
            output.WriteLine($"{failedFast} commands for {node} failed fast, slowest {slowest.TotalMilliseconds:F1} ms; rejected_connections on it over {counted.TotalSeconds:F1} s: {rejected} (BreakDuration {BreakDuration.TotalSeconds:F0} s)");

            // Fast means refused by the breaker (the exception type above), not a command left to time out (5 s); it
            // measures a few ms on a quiet machine.
            Assert.InRange(slowest, TimeSpan.Zero, TimeSpan.FromSeconds(4));
            // The node sees about one connect per break (jittered longer, never shorter) and one already under way at most.
            Assert.InRange(rejected, 1, (long)(counted / BreakDuration) + 2);
            Assert.DoesNotContain(await full.ClientListAsync(), c => c.Name.Contains(":fullMaster:", StringComparison.Ordinal));
        }
        finally
        {
            await full.ExecuteAsync("CONFIG", "SET", "maxclients", "10000");
        }

        // Room again: the next probe closes the node's breaker and the pool's multiplexer reconnects there.
        await Eventually.TrueAsync(
            async () =>
            {
                await db.StringSetAsync(keys[full], "after");
                return true;
            },
            TimeSpan.FromSeconds(30),
            "the full node serves again once it has room");
        Assert.Equal(RedisPoolCircuitState.Closed, pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState);
        Assert.Single(await full.ClientListAsync(), c => c.Name.Contains(":fullMaster:", StringComparison.Ordinal));
    }

    private static async Task<long> RejectedAsync(RedisClusterNode node) =>
        long.Parse((await node.InfoAsync("stats"))["rejected_connections"], CultureInfo.InvariantCulture);
}
