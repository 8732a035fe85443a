using System.Globalization;
using System.Net.Sockets;
using System.Text;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Harness;

/// <summary>One cluster for the class: each test uses its own keys and slots, and leaves every node running.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private RedisCluster? _cluster;

    public RedisCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    public async Task InitializeAsync() => _cluster = await RedisCluster.StartAsync();

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

[Collection(FaultCollection.Name)]
public sealed class RedisClusterTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>, IAsyncLifetime
{
    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Started_cluster_covers_every_slot_once_with_every_node_ok()
    {
        Assert.Equal(3, Cluster.Nodes.Count);
        Assert.Equal(Cluster.Nodes, await Cluster.GetMastersAsync());
        var covered = new int[RedisCluster.SlotCount];
        foreach (var range in (RedisResult[])(await Cluster.Nodes[0].ExecuteAsync("CLUSTER", "SLOTS"))!)
        {
            var (first, last) = ((int)range[0], (int)range[1]);
            for (var slot = first; slot <= last; slot++)
            {
                covered[slot]++;
            }
        }

        Assert.All(covered, count => Assert.Equal(1, count));
        foreach (var node in Cluster.Nodes)
        {
            var info = (string)(await node.ExecuteAsync("CLUSTER", "INFO"))!;
            Assert.Contains("cluster_state:ok", info, StringComparison.Ordinal);
            Assert.Contains("cluster_slots_ok:16384", info, StringComparison.Ordinal);
            Assert.Equal(node.NodeId, (string?)await node.ExecuteAsync("CLUSTER", "MYID"));
        }
    }

    [Fact]
    public async Task Key_written_through_a_cluster_client_lives_on_the_reported_owner_only()
    {
        await using var client = await ConnectionMultiplexer.ConnectAsync(Cluster.ConnectionString);
        var owners = new HashSet<RedisClusterNode>();
        for (var i = 0; i < 30; i++)
        {
            var key = $"route:{i}";
            await client.GetDatabase().StringSetAsync(key, i);
            var owner = await Cluster.GetKeyOwnerAsync(key);
            owners.Add(owner);

            Assert.Equal(1, (int)await owner.ExecuteAsync("EXISTS", key));
            foreach (var other in Cluster.Nodes.Where(n => n != owner))
            {
                var moved = await Assert.ThrowsAsync<RedisServerException>(() => other.ExecuteAsync("EXISTS", key));
                Assert.StartsWith("MOVED", moved.Message, StringComparison.Ordinal);
                Assert.EndsWith($":{owner.Port}", moved.Message, StringComparison.Ordinal);
            }
        }

        Assert.Equal(3, owners.Count);
    }

    [Fact]
    public async Task Migrated_slot_and_its_keys_move_to_the_target_and_the_source_answers_moved()
    {
        const string key = "migrate:{m1}";
        const string absent = "migrate:{m1}:absent";
        await using var client = await ConnectionMultiplexer.ConnectAsync(Cluster.ConnectionString);
        await client.GetDatabase().StringSetAsync(key, "before");
        var slot = await Cluster.GetSlotAsync(key);
        var source = await Cluster.GetSlotOwnerAsync(slot);
        var target = Cluster.Nodes.First(n => n != source);

        var migration = await Cluster.BeginSlotMigrationAsync(slot, target);
        var ask = await Assert.ThrowsAsync<RedisServerException>(() => source.ExecuteAsync("GET", absent));
        Assert.StartsWith($"ASK {slot} ", ask.Message, StringComparison.Ordinal);
        await migration.CompleteAsync();

        Assert.Same(target, await Cluster.GetSlotOwnerAsync(slot));
        Assert.Equal("before", (string?)await target.ExecuteAsync("GET", key));
        var moved = await Assert.ThrowsAsync<RedisServerException>(() => source.ExecuteAsync("GET", key));
        Assert.Equal($"MOVED {slot} 127.0.0.1:{target.Port}", moved.Message);
        Assert.Equal("before", (string?)await client.GetDatabase().StringGetAsync(key));

        await Cluster.MigrateSlotAsync(slot, source);
        Assert.Same(source, await Cluster.GetSlotOwnerAsync(slot));
    }

    [Fact]
    public async Task Restarted_node_keeps_its_id_and_slots_and_the_cluster_is_ok_again()
    {
        var node = Cluster.Nodes[1];
        var slot = -1;
        for (var i = 0; slot < 0; i++)
        {
            if (await Cluster.GetKeyOwnerAsync($"restart:{i}") == node)
            {
                slot = await Cluster.GetSlotAsync($"restart:{i}");
            }
        }

        var pid = node.ProcessId!.Value;

        await node.KillAsync();
        Assert.False(node.IsRunning);
        Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"pid {pid} should be gone after KillAsync");
        await node.RestartAsync();
        await Cluster.WaitUntilHealthyAsync();

        Assert.True(node.IsRunning);
        Assert.Equal(node.NodeId, (string?)await node.ExecuteAsync("CLUSTER", "MYID"));
        Assert.Same(node, (await Cluster.GetMastersAsync())[1]);
        Assert.Same(node, await Cluster.GetSlotOwnerAsync(slot));
        Assert.Contains(RedisServer.AdminClientName, (await node.ClientListAsync()).Select(c => c.Name));
    }

    [Fact]
    public async Task Node_admin_socket_is_the_only_harness_socket_on_each_node_and_answers_at_maxclients()
    {
        var node = Cluster.Nodes[2];
        var maxclients = (string?)((RedisResult[])(await node.ExecuteAsync("CONFIG", "GET", "maxclients"))!)[1];
        try
        {
            foreach (var each in Cluster.Nodes)
            {
                Assert.Single(await each.ClientListAsync(), c => c.Name == RedisServer.AdminClientName);
            }

            await node.ConfigSetAsync("maxclients", "1");
            using var refused = new TcpClient(AddressFamily.InterNetwork);
            await refused.ConnectAsync(node.EndPoint);
            await refused.GetStream().WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[256];
            var read = await refused.GetStream().ReadAsync(buffer);
            Assert.Equal("-ERR max number of clients + cluster connections reached\r\n", Encoding.ASCII.GetString(buffer, 0, read));
            Assert.Equal("cluster_state:ok", ((string?)await node.ExecuteAsync("CLUSTER", "INFO"))!.Split("\r\n")[0]);
        }
        finally
        {
            await node.ConfigSetAsync("maxclients", maxclients!);
        }
    }

    [Fact]
    public async Task Disposed_cluster_stops_every_node_and_deletes_their_files()
    {
        var cluster = await RedisCluster.StartAsync(new RedisClusterOptions { Masters = 3, ReplicasPerMaster = 1 });
        List<int> pids;
        List<string> files;
        try
        {
            Assert.Equal(6, cluster.Nodes.Count);
            Assert.Equal(3, (await cluster.GetMastersAsync()).Count);
            pids = [.. cluster.Nodes.Select(n => n.ProcessId!.Value)];
            files = [];
            foreach (var node in cluster.Nodes)
            {
                files.Add((string)((RedisResult[])(await node.ExecuteAsync("CONFIG", "GET", "cluster-config-file"))!)[1]!);
            }

            Assert.All(files, file => Assert.True(File.Exists(file), file));
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"pid {pid} should be gone after DisposeAsync"));
        Assert.All(files, file => Assert.False(File.Exists(file), file));
        Assert.All(pids, pid => Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "owned", string.Create(CultureInfo.InvariantCulture, $"{pid}.pid")))));
    }

    [Fact]
    public async Task Cluster_whose_nodes_cannot_start_fails_with_their_log_and_leaves_no_process()
    {
        var options = new RedisClusterOptions();
        options.Arguments.Add("--no-such-directive");
        options.Arguments.Add("1");
        var before = OwnedPidFiles();

        var failure = await Assert.ThrowsAsync<RedisServerStartException>(() => RedisCluster.StartAsync(options));

        Assert.Equal(RedisServerStartFailure.ExitedAtStart, failure.Failure);
        Assert.Contains("no-such-directive", failure.LogTail, StringComparison.Ordinal);
        Assert.Empty(OwnedPidFiles().Except(before));
    }

    [Fact]
    public async Task Cluster_of_fewer_than_three_masters_is_refused_naming_the_option()
    {
        var failure = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => RedisCluster.StartAsync(new RedisClusterOptions { Masters = 2 }));

        Assert.Contains("RedisClusterOptions.Masters must be at least 3", failure.Message, StringComparison.Ordinal);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    private static string[] OwnedPidFiles()
    {
        var directory = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "owned");
        return Directory.Exists(directory) ? Directory.GetFiles(directory, "*.pid") : [];
    }

    public Task DisposeAsync()
    {
        output.WriteLine(Cluster.LogTails());
        return Task.CompletedTask;
    }
}
