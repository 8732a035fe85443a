using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.IntegrationTests.Production;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.ClusterLeases;

/// <summary>
/// Leases against a real 3-master cluster, one cluster for the class. Each test has its own pool (its own client
/// names) and its own keys; the tests that move a slot pick a slot no other test uses and leave the cluster healthy.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterLeaseTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(10);

    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task A_keyed_lease_is_one_socket_on_the_slot_owner_and_none_elsewhere()
    {
        await using var pool = CreatePool(out var name);
        var masters = await Cluster.GetMastersAsync();
        for (var i = 0; i < masters.Count; i++)
        {
            var owner = masters[i];
            var key = await KeyOnAsync(owner, "own:" + name);
            await using var lease = await pool.LeaseAsync(key);
            await lease.Database.StringSetAsync(key, "v");
            var id = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");

            // One socket on this owner; the masters leased before keep their one (returned, idle); the rest have none.
            var leases = await LeaseSocketsAsync(name);
            Assert.Equal(1, leases[owner]);
            Assert.All(masters.Take(i), m => Assert.Equal(1, leases[m]));
            Assert.All(masters.Skip(i + 1), m => Assert.Equal(0, leases[m]));
            Assert.Contains(await owner.ClientListAsync(), c => c.Id == id && c.Name.Contains(":lease", StringComparison.Ordinal));
            Assert.Equal("v", (string?)await owner.ExecuteAsync("GET", key));
        }

        // Returned, each stays idle on its own master: one lease socket per master, in each master's count; the
        // pool-wide socket figures are the busiest node's, the lease counts are summed over the masters.
        await Eventually.TrueAsync(async () => (await LeaseSocketsAsync(name)).Values.All(n => n == 1), Settle, "each master keeps its one idle lease socket");
        var statistics = pool.GetStatistics();
        Assert.All(masters, m => Assert.Equal(1, statistics.Nodes.Single(n => n.EndPoint == $"127.0.0.1:{m.Port}").LeaseSockets));
        Assert.Equal(1, statistics.LeaseSockets);
        Assert.Equal(3, statistics.LeasesIdle);
    }

    [Fact]
    public async Task MaxLeases_applies_per_master()
    {
        await using var pool = CreatePool(out var name, o =>
        {
            o.Leases.MaxLeases = 1;
            o.Leases.MaxWaiters = 0;
            o.Leases.AcquireTimeout = TimeSpan.FromMilliseconds(500);
        });
        var masters = await Cluster.GetMastersAsync();
        var held = new List<RedisLease>();
        try
        {
            foreach (var master in masters)
            {
                held.Add(await pool.LeaseAsync(await KeyOnAsync(master, "max:" + name), CancellationToken.None));
            }

            // A second lease on a master that has its one: refused by that master's MaxLeases, the others are not involved.
            var full = await Assert.ThrowsAsync<RedisPoolExhaustedException>(async () => await pool.LeaseAsync(await KeyOnAsync(masters[0], "max2:" + name), CancellationToken.None));
            output.WriteLine(full.Message);
            Assert.Contains("'Leases.MaxLeases' (1)", full.Message, StringComparison.Ordinal);
            Assert.Equal(3, pool.GetStatistics().LeasesUsed);
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
    public async Task A_keyless_lease_in_a_cluster_fails_naming_the_keyed_overload()
    {
        await using var pool = CreatePool(out var name);

        // Before any socket is open: the lease socket finds the cluster, says so and opens nothing more afterwards.
        var first = await Assert.ThrowsAsync<InvalidOperationException>(async () => await pool.LeaseAsync());
        Assert.Contains("LeaseAsync(RedisKey key, CancellationToken)", first.Message, StringComparison.Ordinal);

        // Once the pool knows it talks to a cluster: at once, without a socket.
        await pool.ConnectAsync();
        var second = await Assert.ThrowsAsync<InvalidOperationException>(async () => await pool.LeaseAsync());
        Assert.Contains("LeaseAsync(RedisKey key, CancellationToken)", second.Message, StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => (await LeaseSocketsAsync(name)).Values.All(n => n == 0), Settle, "no lease socket is left open");
        Assert.Equal(0, pool.GetStatistics().LeaseSockets);

        // The keyed overload serves the same pool, slot checks included.
        var masters = await Cluster.GetMastersAsync();
        var a = await KeyOnAsync(masters[0], "kl:" + name);
        await using var lease = await pool.LeaseAsync(a, CancellationToken.None);
        await Assert.ThrowsAsync<ArgumentException>(async () => await lease.BlockingLeftPopAsync([a, await KeyOnAsync(masters[1], "kl:" + name)], TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task A_keyless_lease_found_the_cluster_first_and_later_keyed_leases_still_check_slots()
    {
        await using var pool = CreatePool(out var name);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await pool.LeaseAsync());

        var masters = await Cluster.GetMastersAsync();
        var a = await KeyOnAsync(masters[0], "kf:" + name);
        await using var lease = await pool.LeaseAsync(a, CancellationToken.None);
        await Assert.ThrowsAsync<ArgumentException>(async () => await lease.BlockingLeftPopAsync([a, await KeyOnAsync(masters[1], "kf:" + name)], TimeSpan.FromSeconds(1)));
        Assert.Equal(1, (await LeaseSocketsAsync(name))[masters[0]]);
    }

    [Fact]
    public async Task A_cross_slot_blocking_helper_fails_before_sending_naming_hash_tags()
    {
        await using var pool = CreatePool(out var name);
        var masters = await Cluster.GetMastersAsync();
        var a = await KeyOnAsync(masters[0], "x:" + name);
        var b = await KeyOnAsync(masters[1], "x:" + name);
        await using var lease = await pool.LeaseAsync(a, CancellationToken.None);
        var calls = await CommandCallsAsync(masters, "blpop");

        var started = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => lease.BlockingLeftPopAsync([a, b], TimeSpan.FromSeconds(5)));
        output.WriteLine(refused.Message);
        Assert.Contains("hash tag", refused.Message, StringComparison.Ordinal);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"refused after {started.Elapsed}, as long as the blocking timeout (5 s)");
        var move = await Assert.ThrowsAsync<ArgumentException>(() => lease.BlockingMoveAsync(a, b, ListSide.Left, ListSide.Right, TimeSpan.FromSeconds(1)));
        Assert.Contains("hash tag", move.Message, StringComparison.Ordinal);
        Assert.Equal(calls, await CommandCallsAsync(masters, "blpop"));

        // Keys that share a hash tag share a slot: allowed.
        var tag = "{" + name + "}";
        await using var tagged = await pool.LeaseAsync(tag + ":a");
        await (await Cluster.GetKeyOwnerAsync(tag + ":b")).ExecuteAsync("RPUSH", tag + ":b", "item");
        var popped = await tagged.BlockingLeftPopAsync([tag + ":a", tag + ":b"], TimeSpan.FromSeconds(2));
        Assert.Equal("item", (string?)popped?.Value);
    }

    [Fact]
    public async Task A_cancelled_blocking_command_is_unblocked_on_its_own_node_and_its_socket_kept()
    {
        var logs = new CapturingLoggerProvider();
        await using var pool = CreatePool(out var name, logs: logs);
        var masters = await Cluster.GetMastersAsync();
        foreach (var owner in masters)
        {
            var queue = await KeyOnAsync(owner, "cancel:" + name);
            long clientId;
            await using (var lease = await pool.LeaseAsync(queue, CancellationToken.None))
            {
                clientId = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
                var started = Stopwatch.StartNew();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lease.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(20), cts.Token));
                output.WriteLine($"{owner}: BLPOP cancelled after {started.ElapsedMilliseconds} ms");
                Assert.True(started.Elapsed < TimeSpan.FromSeconds(5));
            }

            // The same socket (same CLIENT ID) comes back and serves the next pop on the same master.
            await owner.ExecuteAsync("RPUSH", queue, "after-cancel");
            await using (var again = await pool.LeaseAsync(queue, CancellationToken.None))
            {
                Assert.Equal(clientId, (long)await again.Database.ExecuteAsync("CLIENT", "ID"));
                var popped = await again.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(2));
                Assert.Equal("after-cancel", (string?)popped?.Value);
            }

            Assert.Equal("0", (await owner.InfoAsync("clients"))["blocked_clients"]);
        }

        Assert.All(masters, m => Assert.Equal(1, pool.GetStatistics().Nodes.Single(n => n.EndPoint == $"127.0.0.1:{m.Port}").LeaseSockets));
        Assert.Equal(3, pool.GetStatistics().LeasesIdle);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id is 202 or 204);
    }

    [Fact]
    public async Task A_MOVED_reply_under_a_live_lease_is_followed_once_on_the_new_owner()
    {
        var logs = new CapturingLoggerProvider();
        await using var pool = CreatePool(out var name, logs: logs);
        var masters = await Cluster.GetMastersAsync();
        var queue = await KeyOnAsync(masters[0], "moved:" + name);
        var slot = await Cluster.GetSlotAsync(queue);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = masters.First(m => m != source);

        await using var lease = await pool.LeaseAsync(queue, CancellationToken.None);
        var leaseClientId = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");
        await Cluster.MigrateSlotAsync(slot, target);
        try
        {
            await target.ExecuteAsync("RPUSH", queue, "moved-item");
            var popped = await lease.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(2));
            Assert.Equal("moved-item", (string?)popped?.Value);
            Assert.Equal(0, (long)await target.ExecuteAsync("LLEN", queue));
            Assert.Single(logs.Lines, l => l.EventId.Id == 207);

            // The lease keeps its own socket on the old owner, clean; the command ran on a lease socket of the new owner.
            Assert.Equal(leaseClientId, (long)await lease.Database.ExecuteAsync("CLIENT", "ID"));
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[source]);
            Assert.Equal(1, sockets[target]);
        }
        finally
        {
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    [Fact]
    public async Task An_ASK_reply_during_a_half_done_migration_is_followed_once_on_the_importing_node()
    {
        var logs = new CapturingLoggerProvider();
        await using var pool = CreatePool(out var name, logs: logs);
        var masters = await Cluster.GetMastersAsync();
        var queue = await KeyOnAsync(masters[1], "ask:" + name);
        var slot = await Cluster.GetSlotAsync(queue);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = masters.First(m => m != source);

        await using var lease = await pool.LeaseAsync(queue, CancellationToken.None);
        var migration = await Cluster.BeginSlotMigrationAsync(slot, target);
        try
        {
            // The key is not on the source (never written there): the source answers ASK, the target holds it after ASKING.
            await target.ExecuteAsync("ASKING");
            await target.ExecuteAsync("RPUSH", queue, "asked-item");
            var popped = await lease.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(2));
            Assert.Equal("asked-item", (string?)popped?.Value);
            Assert.Single(logs.Lines, l => l.EventId.Id == 207);
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[source]);
            Assert.Equal(1, sockets[target]);
        }
        finally
        {
            await migration.CompleteAsync();
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    [Fact]
    public async Task Commands_on_lease_Database_follow_a_MOVED_reply_once_and_write_to_the_new_owner()
    {
        var logs = new CapturingLoggerProvider();
        await using var pool = CreatePool(out var name, logs: logs);
        var masters = await Cluster.GetMastersAsync();
        var key = await KeyOnAsync(masters[2], "dbmoved:" + name);
        var (text, list, fireAndForget) = ("{" + key + "}:text", "{" + key + "}:list", "{" + key + "}:ff");
        var slot = await Cluster.GetSlotAsync(key);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = masters.First(m => m != source);

        await using var lease = await pool.LeaseAsync(key, CancellationToken.None);
        var database = lease.Database;
        Assert.True(await database.StringSetAsync(text, "before"));
        var leaseClientId = (long)await database.ExecuteAsync("CLIENT", "ID");
        await Cluster.MigrateSlotAsync(slot, target);
        try
        {
            // Async, sync, void, Task and the params Execute overload: each is answered MOVED by the lease's master and run on the new owner.
            Assert.Equal("before", (string?)await database.StringGetAsync(text));
            Assert.True(database.StringSet(text, "after"));
            Assert.Equal("after", (string?)database.StringGet(text));
            Assert.Equal(1, database.ListRightPush(list, "a"));
            Assert.Equal(2, await database.ListRightPushAsync(list, "b"));
            Assert.Equal(3, await database.ListRightPushAsync(list, "c"));
            await database.ListTrimAsync(list, 0, 1);
            database.ListTrim(list, 0, 1);
            Assert.Equal("after", (string?)await database.ExecuteAsync("GET", text));

            Assert.Equal("after", (string?)await target.ExecuteAsync("GET", text));
            Assert.Equal(["a", "b"], ((RedisResult[]?)await target.ExecuteAsync("LRANGE", list, "0", "-1"))!.Select(r => (string?)r));

            // Not followed, as documented: a fire-and-forget command's redirect is never read, and NoRedirect asks to see it.
            database.StringSet(fireAndForget, "lost", flags: CommandFlags.FireAndForget);
            var seen = await Assert.ThrowsAnyAsync<RedisException>(() => database.StringGetAsync(text, CommandFlags.NoRedirect));
            output.WriteLine(seen.Message);
            Assert.Equal(0, (long)await target.ExecuteAsync("EXISTS", fireAndForget));

            // One log line for the lease, however many commands it followed; the lease keeps its own socket.
            Assert.Single(logs.Lines, l => l.EventId.Id == 207);
            Assert.Equal(leaseClientId, (long)await database.ExecuteAsync("CLIENT", "ID"));

            // Each followed command borrowed one lease socket of the new owner and gave it back: one socket per master by
            // CLIENT LIST, and only the lease itself is held.
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[source]);
            Assert.Equal(1, sockets[target]);
            Assert.Equal(1, pool.GetStatistics().LeasesUsed);
        }
        finally
        {
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    [Fact]
    public async Task Commands_on_lease_Database_follow_an_ASK_reply_during_a_half_done_migration()
    {
        var logs = new CapturingLoggerProvider();
        await using var pool = CreatePool(out var name, logs: logs);
        var masters = await Cluster.GetMastersAsync();
        var key = await KeyOnAsync(masters[0], "dbask:" + name);
        var (kept, moved) = ("{" + key + "}:kept", "{" + key + "}:moved");
        var slot = await Cluster.GetSlotAsync(key);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = masters.First(m => m != source);

        await using var lease = await pool.LeaseAsync(key, CancellationToken.None);
        var database = lease.Database;
        Assert.True(await database.StringSetAsync(kept, "on-source"));
        var migration = await Cluster.BeginSlotMigrationAsync(slot, target);
        try
        {
            // A key still on the source is served there; one the source does not hold is answered ASK and runs on the
            // importing master after ASKING.
            Assert.Equal("on-source", (string?)await database.StringGetAsync(kept));
            Assert.Equal(1, await database.ListRightPushAsync(moved, "asked"));
            Assert.Equal(2, database.ListRightPush(moved, "asked-sync"));
            Assert.Equal(["asked", "asked-sync"], (await database.ListRangeAsync(moved)).Select(v => (string?)v));
            Assert.Single(logs.Lines, l => l.EventId.Id == 207);

            await target.ExecuteAsync("ASKING");
            Assert.Equal(2, (long)await target.ExecuteAsync("LLEN", moved));
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[source]);
            Assert.Equal(1, sockets[target]);
        }
        finally
        {
            await migration.CompleteAsync();
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    [Fact]
    public async Task A_second_redirect_fails_with_a_message_saying_the_slot_moved_twice()
    {
        await using var pool = CreatePool(out var name);
        var masters = await Cluster.GetMastersAsync();
        var key = await KeyOnAsync(masters[1], "twice:" + name);
        var slot = await Cluster.GetSlotAsync(key);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var first = masters.First(m => m != source);
        var second = masters.First(m => m != source && m != first);

        await using var lease = await pool.LeaseAsync(key, CancellationToken.None);
        var leaseClientId = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");

        // The lease's master answers MOVED to the first new owner, which is already handing the slot on and answers ASK.
        await Cluster.MigrateSlotAsync(slot, first);
        var migration = await Cluster.BeginSlotMigrationAsync(slot, second);
        try
        {
            var sync = Assert.ThrowsAny<RedisException>(() => lease.Database.StringSet(key, "v"));
            var async = await Assert.ThrowsAnyAsync<RedisException>(() => lease.Database.ListRightPushAsync(key, "v"));
            var blocking = await Assert.ThrowsAnyAsync<RedisException>(() => lease.BlockingLeftPopAsync([key], TimeSpan.FromSeconds(1)));
            output.WriteLine(async.Message);
            Assert.All([sync, async, blocking], e =>
            {
                Assert.Contains("redirected twice and did not run", e.Message, StringComparison.Ordinal);
                Assert.Contains($"127.0.0.1:{first.Port}", e.Message, StringComparison.Ordinal);
                Assert.Contains($"127.0.0.1:{second.Port}", e.Message, StringComparison.Ordinal);
            });

            // Nothing ran anywhere; the lease's socket and the borrowed one stay clean and in use.
            Assert.Equal(leaseClientId, (long)await lease.Database.ExecuteAsync("CLIENT", "ID"));
            await second.ExecuteAsync("ASKING");
            Assert.Equal(0, (long)await second.ExecuteAsync("EXISTS", key));
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[source]);
            Assert.Equal(1, sockets[first]);
            Assert.Equal(0, sockets[second]);
        }
        finally
        {
            await migration.CompleteAsync();
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    [Fact]
    public async Task A_slot_moving_back_to_the_leases_master_is_served_on_the_leases_own_socket()
    {
        await using var pool = CreatePool(out var name);
        var masters = await Cluster.GetMastersAsync();
        var key = await KeyOnAsync(masters[2], "back:" + name);
        var (text, list) = ("{" + key + "}:text", "{" + key + "}:list");
        var slot = await Cluster.GetSlotAsync(key);
        var home = await Cluster.GetSlotOwnerAsync(slot);
        var away = masters.First(m => m != home);

        await using var lease = await pool.LeaseAsync(key, CancellationToken.None);
        var leaseClientId = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");
        await Cluster.MigrateSlotAsync(slot, away);
        var migration = await Cluster.BeginSlotMigrationAsync(slot, home);
        try
        {
            // The lease's master still names the old owner (MOVED there), which answers ASK back for keys it no longer
            // holds: the command runs on the lease's own socket after ASKING.
            Assert.True(await lease.Database.StringSetAsync(text, "home-async"));
            Assert.Equal(1, lease.Database.ListRightPush(list, "home-sync"));
            await home.ExecuteAsync("ASKING");
            await home.ExecuteAsync("RPUSH", "{" + key + "}:queue", "queued");
            var popped = await lease.BlockingLeftPopAsync(["{" + key + "}:queue"], TimeSpan.FromSeconds(1));
            Assert.Equal("queued", (string?)popped?.Value);

            await home.ExecuteAsync("ASKING");
            Assert.Equal("home-async", (string?)await home.ExecuteAsync("GET", text));
            await home.ExecuteAsync("ASKING");
            Assert.Equal(1, (long)await home.ExecuteAsync("LLEN", list));
            Assert.Equal(leaseClientId, (long)await lease.Database.ExecuteAsync("CLIENT", "ID"));
            var sockets = await LeaseSocketsAsync(name);
            Assert.Equal(1, sockets[home]);
            Assert.Equal(1, sockets[away]);
        }
        finally
        {
            await migration.CompleteAsync();
        }
    }

    [Fact]
    public async Task A_followed_command_waits_for_the_new_owners_MaxLeases_and_says_so_when_it_is_full()
    {
        await using var pool = CreatePool(out var name, o =>
        {
            o.Leases.MaxLeases = 1;
            o.Leases.MaxWaiters = 0;
            o.Leases.AcquireTimeout = TimeSpan.FromMilliseconds(500);
        });
        var masters = await Cluster.GetMastersAsync();
        var key = await KeyOnAsync(masters[0], "full:" + name);
        var slot = await Cluster.GetSlotAsync(key);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = masters.First(m => m != source);

        await using var lease = await pool.LeaseAsync(key, CancellationToken.None);
        await Cluster.MigrateSlotAsync(slot, target);
        try
        {
            // The new owner's one lease is held: the followed command is refused by that master's MaxLeases, and no
            // second socket is opened there.
            RedisLease? held = await pool.LeaseAsync(await KeyOnAsync(target, "held:" + name), CancellationToken.None);
            var full = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => lease.Database.StringSetAsync(key, "v"));
            output.WriteLine(full.Message);
            Assert.Contains("'Leases.MaxLeases' (1)", full.Message, StringComparison.Ordinal);
            Assert.Equal(1, (await LeaseSocketsAsync(name))[target]);

            // Given back, it serves the followed command.
            await held.DisposeAsync();
            Assert.True(await lease.Database.StringSetAsync(key, "v"));
            Assert.Equal("v", (string?)await target.ExecuteAsync("GET", key));
        }
        finally
        {
            await Cluster.MigrateSlotAsync(slot, source);
        }
    }

    private RedisPool CreatePool(out string name, Action<RedisPoolOptions>? configure = null, CapturingLoggerProvider? logs = null)
    {
        name = "cl" + Guid.NewGuid().ToString("N")[..10];
        var options = new RedisPoolOptions
        {
            Name = name,
            ServiceName = "tests",
            Configuration = Cluster.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Leases = { MaxLeases = 4 },
        };
        configure?.Invoke(options);
        return new RedisPool(options, logs is null ? null : new CapturingLoggerFactory(logs));
    }

    /// <summary>A key whose slot <paramref name="owner"/> serves.</summary>
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

    /// <summary>The pool's lease sockets on each node, by <c>CLIENT LIST</c>.</summary>
    private async Task<Dictionary<RedisClusterNode, int>> LeaseSocketsAsync(string pool)
    {
        var counts = new Dictionary<RedisClusterNode, int>();
        foreach (var node in Cluster.Nodes)
        {
            counts[node] = (await node.ClientListAsync()).Count(c => c.Name.Contains($":{pool}:lease", StringComparison.Ordinal));
        }

        output.WriteLine("lease sockets: " + string.Join(", ", counts.Select(c => $"{c.Key.Port}={c.Value}")));
        return counts;
    }

    private static async Task<long> CommandCallsAsync(IEnumerable<RedisClusterNode> nodes, string command)
    {
        long calls = 0;
        foreach (var node in nodes)
        {
            var stats = await node.InfoAsync("commandstats");
            if (stats.TryGetValue("cmdstat_" + command, out var text))
            {
                calls += long.Parse(text.Split(',')[0]["calls=".Length..], CultureInfo.InvariantCulture);
            }
        }

        return calls;
    }
}
