using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Sdk;

namespace RedisPoolKit.Cli.Tests.Integration;

/// <summary>A three-master cluster on loopback, built with <c>redis-cli --cluster create</c>: one report section per master.</summary>
public sealed class ClusterTests : IAsyncLifetime
{
    private readonly List<RedisServer> _nodes = [];

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            var options = new RedisServerOptions();
            foreach (var argument in (string[])["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            {
                options.Arguments.Add(argument);
            }

            _nodes.Add(await RedisServer.StartAsync(options));
        }

        var cli = Path.Combine(Path.GetDirectoryName(FindOnPath("redis-server"))!, "redis-cli");
        var start = new ProcessStartInfo(File.Exists(cli) ? cli : "redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "--cluster", "create" }.Concat(_nodes.Select(n => $"127.0.0.1:{n.Port}")).Concat(["--cluster-replicas", "0", "--cluster-yes"]))
        {
            start.ArgumentList.Add(argument);
        }

        using var create = Process.Start(start)!;
        var output = await create.StandardOutput.ReadToEndAsync();
        var error = await create.StandardError.ReadToEndAsync();
        await create.WaitForExitAsync();
        if (create.ExitCode != 0)
        {
            throw new XunitException($"redis-cli --cluster create failed ({create.ExitCode}): {output}\n{error}");
        }

        var elapsed = Stopwatch.StartNew();
        foreach (var node in _nodes)
        {
            while (!((string?)await node.Admin.GetServer(node.EndPoint).ExecuteAsync("CLUSTER", "INFO") ?? string.Empty).Contains("cluster_state:ok", StringComparison.Ordinal))
            {
                if (elapsed.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new XunitException($"{node} never reported cluster_state:ok.");
                }

                await Task.Delay(50);
            }
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private string Configuration => string.Join(",", _nodes.Select(n => $"127.0.0.1:{n.Port}"));

    [Fact]
    public async Task Inspect_reports_one_section_per_master_and_kill_idle_closes_on_the_right_one()
    {
        var second = _nodes[1];
        await using var raw = new RawClients(second);
        await raw.OpenAsync("CLIENT", "SETNAME", "orders:pod-1:queue:lease0");
        await RawClients.WaitAsync(second, c => c.Name == "orders:pod-1:queue:lease0", 1, 1, "the named socket is idle");

        var inspect = await Redispool.RunAsync("inspect", Configuration, "--json");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var servers = inspect.Json().GetProperty("servers").EnumerateArray().ToList();
        Assert.Equal(_nodes.Select(n => n.Port).Order(), servers.Select(s => int.Parse(s.GetProperty("endpoint").GetString()!.Split(':')[1], CultureInfo.InvariantCulture)).Order());
        var withOrders = Assert.Single(servers, s => s.GetProperty("services").GetArrayLength() > 0);
        Assert.EndsWith($":{second.Port}", withOrders.GetProperty("endpoint").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, inspect.Json().GetProperty("services")[0].GetProperty("connections").GetInt32());

        var kill = await Redispool.RunAsync("kill-idle", Configuration, "--idle", "1s", "--service", "orders", "--yes", "--json");

        Assert.True(kill.ExitCode == 0, kill.ToString());
        Assert.Equal(1, kill.Json().GetProperty("killed").GetInt32());
        Assert.DoesNotContain(await second.ClientListAsync(), c => c.Name == "orders:pod-1:queue:lease0");
    }

    [Fact]
    public async Task Inspect_reads_a_fleet_key_on_the_master_that_holds_its_slot_and_counts_sockets_on_every_master()
    {
        const string Key = "redispoolkit:fleet:{orders:cache}";
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "cache",
            ServiceName = "orders",
            InstanceId = "pod-1",
            Configuration = Configuration,
            Fleet = { Enabled = true, MaxConnections = 6, HeartbeatInterval = TimeSpan.FromMilliseconds(500), InstanceTtl = TimeSpan.FromSeconds(5) },
        });
        await pool.ConnectAsync();
        var elapsed = Stopwatch.StartNew();
        while (pool.GetStatistics().FleetInstances != 1)
        {
            Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(60), "the pool registered within 60 s");
            await Task.Delay(50);
        }

        var inspect = await Redispool.RunAsync("inspect", Configuration, "--json");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var fleet = Assert.Single(inspect.Json().GetProperty("fleets").EnumerateArray());
        Assert.Equal(Key, fleet.GetProperty("key").GetString());
        var holder = _nodes.Single(n => fleet.GetProperty("endpoint").GetString()!.EndsWith($":{n.Port}", StringComparison.Ordinal));
        var slot = (long)await holder.Admin.GetServer(holder.EndPoint).ExecuteAsync("CLUSTER", "KEYSLOT", Key);
        Assert.Equal(1, (long)await holder.Admin.GetServer(holder.EndPoint).ExecuteAsync("CLUSTER", "COUNTKEYSINSLOT", slot));
        var instance = Assert.Single(fleet.GetProperty("instances").EnumerateArray());
        Assert.Equal("live", instance.GetProperty("state").GetString());
        var nodes = fleet.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(3, nodes.Count);
        var named = 0;
        foreach (var node in _nodes)
        {
            var onNode = (await node.ClientListAsync()).Count(c => c.Name.StartsWith("orders:pod-1:cache:", StringComparison.Ordinal));
            Assert.Equal(onNode, nodes.Single(n => n.GetProperty("endpoint").GetString()!.EndsWith($":{node.Port}", StringComparison.Ordinal)).GetProperty("sockets").GetInt32());
            named += onNode;
        }

        Assert.True(named >= 3, $"the pool's multiplexer holds a socket on each master ({named})");
        Assert.Equal(named, fleet.GetProperty("sockets").GetInt32());
        Assert.Equal(named, instance.GetProperty("sockets").GetInt32());
    }

    private static string FindOnPath(string binary) =>
        Environment.GetEnvironmentVariable(RedisServer.ServerPathVariable) is { Length: > 0 } explicitPath && File.Exists(explicitPath)
            ? explicitPath
            : (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator).Select(d => Path.Combine(d, binary)).FirstOrDefault(File.Exists) ?? binary;
}
