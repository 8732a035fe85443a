using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>A multi-key command for a cluster node whose breaker is open fails before it is sent, like a single-key one.</summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterMultiKeyBreakerTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Multi_key_commands_for_a_full_node_fail_at_once_naming_it_and_for_the_others_they_run()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "multiKey",
            Configuration = Cluster.ConnectionString,
            MaxConnections = 4,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            // The breaker opens on the full node's max-clients reply, not on a timeout: room for a loaded machine's first connect.
            ConnectTimeout = TimeSpan.FromSeconds(5),
            // Long enough that no probe half-opens the breaker while the commands below run: they test the check, not the probe.
            Breaker = { BreakDuration = TimeSpan.FromSeconds(30), MaxBreakDuration = TimeSpan.FromSeconds(30) },
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        var full = Cluster.Nodes[1];
        var node = $"127.0.0.1:{full.Port}";

        // Two keys per node sharing a slot (one hash tag), so each pair is one valid multi-key command.
        var pairs = new Dictionary<RedisClusterNode, RedisKey[]>();
        for (var i = 0; pairs.Count < Cluster.Nodes.Count; i++)
        {
            var tag = $"{{multi:{i}}}";
            pairs.TryAdd(await Cluster.GetKeyOwnerAsync(tag), [$"{tag}:a", $"{tag}:b"]);
        }

        foreach (var keys in pairs.Values)
        {
            await db.StringSetAsync(keys[0], "a");
            await db.StringSetAsync(keys[1], "b");
        }

        var connected = (await full.InfoAsync("clients"))["connected_clients"];
        await full.ExecuteAsync("CONFIG", "SET", "maxclients", connected);
        try
        {
            foreach (var client in (await full.ClientListAsync()).Where(c => c.Name.Contains(":multiKey:", StringComparison.Ordinal)))
            {
                await full.ExecuteAsync("CLIENT", "KILL", "ID", client.Id.ToString(CultureInfo.InvariantCulture));
            }

            await Eventually.TrueAsync(
                () => Task.FromResult(pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState != RedisPoolCircuitState.Closed),
                TimeSpan.FromSeconds(15),
                "the full node's breaker opens");

            var slowest = TimeSpan.Zero;
            foreach (var (owner, keys) in pairs)
            {
                if (owner == full)
                {
                    foreach (var (name, command) in new (string, Func<Task>)[] { ("MGET", () => db.StringGetAsync(keys)), ("DEL", () => db.KeyDeleteAsync(keys)), ("SUNION", () => db.SetCombineAsync(SetOperation.Union, keys)) })
                    {
                        Assert.Equal(RedisPoolCircuitState.Open, pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState);
                        var started = Stopwatch.StartNew();
                        var refused = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(command);
                        output.WriteLine($"{name}: refused after {started.Elapsed.TotalMilliseconds:F1} ms");
                        slowest = started.Elapsed > slowest ? started.Elapsed : slowest;
                        Assert.Contains(node, refused.Message, StringComparison.Ordinal);
                    }

                    // Synchronous too.
                    Assert.Throws<RedisPoolCircuitOpenException>(() => db.StringGet(keys));
                }
                else
                {
                    Assert.Equal(["a", "b"], (await db.StringGetAsync(keys)).Select(v => (string?)v));
                }
            }

            // Before sending: far below StackExchange.Redis's timeout (5 s), which is what it waited before.
            output.WriteLine($"slowest refusal of a multi-key command for {node}: {slowest.TotalMilliseconds:F1} ms");
            Assert.InRange(slowest, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        }
        finally
        {
            await full.ExecuteAsync("CONFIG", "SET", "maxclients", "10000");
        }
    }
}
