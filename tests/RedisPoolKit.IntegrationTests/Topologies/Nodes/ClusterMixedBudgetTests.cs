using System.Globalization;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>
/// Multiplexers and leases of one pool together against a real 3-master cluster: MaxConnections holds on every node,
/// proven by CLIENT LIST there, and the statistics show the same sockets per node.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterMixedBudgetTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Multiplexers_and_leases_on_every_master_stay_within_MaxConnections_on_each_node()
    {
        var name = "mix" + Guid.NewGuid().ToString("N")[..8];
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = name,
            ServiceName = "tests",
            Configuration = Cluster.ConnectionString,
            MaxConnections = 4,
            MinMultiplexers = 2,
            MaxMultiplexers = 2,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Leases = { MaxLeases = 4, MinIdle = 0, MaxWaiters = 0, AcquireTimeout = TimeSpan.FromMilliseconds(500) },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        for (var i = 0; i < 30; i++)
        {
            await db.StringSetAsync($"{name}:{i}", i);
        }

        var masters = await Cluster.GetMastersAsync();
        var held = new List<RedisLease>();
        try
        {
            foreach (var master in masters)
            {
                // Two multiplexer sockets on this master leave two slots: two leases get them, the third is refused naming the node.
                held.Add(await pool.LeaseAsync(await KeyOnAsync(master, name + ":a"), CancellationToken.None));
                held.Add(await pool.LeaseAsync(await KeyOnAsync(master, name + ":b"), CancellationToken.None));
                var refused = await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync(await KeyOnAsync(master, name + ":c"), CancellationToken.None));
                output.WriteLine(refused.Message);
                Assert.Contains($"127.0.0.1:{master.Port}", refused.Message, StringComparison.Ordinal);
                Assert.Contains("'MaxConnections' (currently 4)", refused.Message, StringComparison.Ordinal);
            }

            foreach (var lease in held)
            {
                await lease.Database.PingAsync();
            }

            var statistics = pool.GetStatistics();
            foreach (var node in Cluster.Nodes)
            {
                var clients = (await node.ClientListAsync()).Where(c => c.Name.Contains($":{name}:", StringComparison.Ordinal)).ToList();
                var leases = clients.Count(c => c.Name.Contains(":lease", StringComparison.Ordinal));
                output.WriteLine($"{node.Port}: {clients.Count} sockets, {leases} lease");
                Assert.Equal(4, clients.Count);
                Assert.Equal(2, leases);
                var stats = Assert.Single(statistics.Nodes, n => n.EndPoint == $"127.0.0.1:{node.Port}");
                Assert.Equal(4, stats.Sockets);
                Assert.Equal(2, stats.MultiplexerSockets);
                Assert.Equal(2, stats.LeaseSockets);
            }

            // The shared multiplexers keep serving every slot while the leases hold the rest of each node's budget.
            for (var i = 0; i < 30; i++)
            {
                Assert.Equal(i, (int)await db.StringGetAsync($"{name}:{i}"));
            }
        }
        finally
        {
            foreach (var lease in held)
            {
                await lease.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_full_node_whose_budget_the_pool_holds_is_probed_in_place_of_its_socket_that_is_down_and_recovers()
    {
        var name = "probe" + Guid.NewGuid().ToString("N")[..8];
        var breakDuration = TimeSpan.FromSeconds(1);
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = name,
            ServiceName = "tests",
            Configuration = Cluster.ConnectionString,
            MaxConnections = 1,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Breaker = { BreakDuration = breakDuration, MaxBreakDuration = breakDuration },
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        var masters = await Cluster.GetMastersAsync();
        var full = masters[0];
        var node = $"127.0.0.1:{full.Port}";
        var key = await KeyOnAsync(full, name);
        await db.StringSetAsync(key, "before");

        // The node is full and the pool's one socket there (its whole budget on the node) is killed.
        await full.ExecuteAsync("CONFIG", "SET", "maxclients", (await full.InfoAsync("clients"))["connected_clients"]);
        try
        {
            foreach (var client in (await full.ClientListAsync()).Where(c => c.Name.Contains($":{name}:", StringComparison.Ordinal)))
            {
                await full.ExecuteAsync("CLIENT", "KILL", "ID", client.Id.ToString(CultureInfo.InvariantCulture));
            }

            await Eventually.TrueAsync(
                () => Task.FromResult(pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState != RedisPoolCircuitState.Closed),
                TimeSpan.FromSeconds(15),
                "the full node's breaker opens");
            var before = long.Parse((await full.InfoAsync("stats"))["rejected_connections"], CultureInfo.InvariantCulture);

            // Every slot of the node's budget is the pool's own socket, down: the probes stand in for it and still reach the node.
            await Eventually.TrueAsync(
                async () => long.Parse((await full.InfoAsync("stats"))["rejected_connections"], CultureInfo.InvariantCulture) > before,
                TimeSpan.FromSeconds(15),
                "a probe reaches the full node although the pool's budget there is all held");
            var stats = pool.GetStatistics().Nodes.Single(n => n.EndPoint == node);
            Assert.Equal(1, stats.Sockets);
            Assert.Equal(1, stats.MultiplexerSockets);
        }
        finally
        {
            await full.ExecuteAsync("CONFIG", "SET", "maxclients", "10000");
        }

        await Eventually.TrueAsync(
            async () =>
            {
                await db.StringSetAsync(key, "after");
                return true;
            },
            TimeSpan.FromSeconds(30),
            "the node serves again once it has room");
        Assert.Single(await full.ClientListAsync(), c => c.Name.Contains($":{name}:", StringComparison.Ordinal));
        Assert.Equal(1, pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).Sockets);
    }

    [Fact]
    public async Task A_lease_for_a_slot_of_a_node_whose_breaker_is_open_fails_at_once_naming_it_and_the_others_lease()
    {
        var name = "lbrk" + Guid.NewGuid().ToString("N")[..8];
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = name,
            ServiceName = "tests",
            Configuration = Cluster.ConnectionString,
            MaxConnections = 4,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Breaker = { BreakDuration = TimeSpan.FromSeconds(30), MaxBreakDuration = TimeSpan.FromSeconds(30) },
            Leases = { MaxLeases = 2, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var masters = await Cluster.GetMastersAsync();
        var full = masters[1];
        var node = $"127.0.0.1:{full.Port}";
        var key = await KeyOnAsync(full, name);
        await pool.GetDatabase().StringSetAsync(key, "before");

        await full.ExecuteAsync("CONFIG", "SET", "maxclients", (await full.InfoAsync("clients"))["connected_clients"]);
        try
        {
            foreach (var client in (await full.ClientListAsync()).Where(c => c.Name.Contains($":{name}:", StringComparison.Ordinal)))
            {
                await full.ExecuteAsync("CLIENT", "KILL", "ID", client.Id.ToString(CultureInfo.InvariantCulture));
            }

            await Eventually.TrueAsync(
                () => Task.FromResult(pool.GetStatistics().Nodes.Single(n => n.EndPoint == node).CircuitState != RedisPoolCircuitState.Closed),
                TimeSpan.FromSeconds(15),
                "the full node's breaker opens");

            var started = System.Diagnostics.Stopwatch.StartNew();
            var refused = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(async () => await pool.LeaseAsync(key, CancellationToken.None));
            output.WriteLine($"{started.Elapsed.TotalMilliseconds:F0} ms: {refused.Message}");
            Assert.Contains(node, refused.Message, StringComparison.Ordinal);
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"refused after {started.Elapsed}, as long as ConnectTimeout (5 s)");

            await using var other = await pool.LeaseAsync(await KeyOnAsync(masters[0], name), CancellationToken.None);
            await other.Database.PingAsync();
        }
        finally
        {
            await full.ExecuteAsync("CONFIG", "SET", "maxclients", "10000");
        }
    }

    private async Task<string> KeyOnAsync(RedisClusterNode owner, string prefix)
    {
        for (var i = 0; ; i++)
        {
            var key = prefix + ":" + i.ToString(CultureInfo.InvariantCulture);
            if (await Cluster.GetKeyOwnerAsync(key) == owner)
            {
                return key;
            }
        }
    }
}
