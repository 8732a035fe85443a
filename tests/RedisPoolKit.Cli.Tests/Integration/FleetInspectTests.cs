using System.Diagnostics;
using RedisPoolKit.Cli.Redis;
using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Sdk;

namespace RedisPoolKit.Cli.Tests.Integration;

/// <summary><c>redispool inspect</c> on the fleet budget: real pools registering, one stale registration, one pool outside the budget.</summary>
public sealed class FleetInspectTests : IAsyncLifetime
{
    private const string Key = "redispoolkit:fleet:{orders:cache}";
    private RedisServer _server = null!;

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private RedisPool Pool(string service, string instance, string name, bool fleet, TimeSpan heartbeat, string? configuration = null) => new(new RedisPoolOptions
    {
        Name = name,
        ServiceName = service,
        InstanceId = instance,
        Configuration = configuration ?? _server.ConnectionString,
        Fleet = { Enabled = fleet, MaxConnections = 6, HeartbeatInterval = heartbeat, InstanceTtl = heartbeat * 4 },
    });

    [Fact]
    public async Task Shows_live_and_expired_registrations_by_server_time_next_to_each_instances_sockets()
    {
        await using var a = Pool("orders", "pod-a", "cache", fleet: true, TimeSpan.FromSeconds(10));
        await using var b = Pool("orders", "pod-b", "cache", fleet: true, TimeSpan.FromSeconds(10));
        await using var outside = Pool("orders", "pod-c", "cache", fleet: false, TimeSpan.FromSeconds(10));
        await Task.WhenAll(a.ConnectAsync(), b.ConnectAsync(), outside.ConnectAsync());
        var db = _server.Admin.GetDatabase();
        await WaitAsync(async () => await db.SortedSetLengthAsync(Key) == 2, "both pods registered");

        // An instance that died without disposing, as its last heartbeat left it: expired a second ago by the server's
        // clock, removed only by the next heartbeat (8-10 s away).
        var now = FleetReader.ParseTime(await db.ExecuteAsync("TIME"));
        await db.SortedSetAddAsync(Key, "pod-gone", now - 1_000);

        var result = await Redispool.RunAsync("inspect", _server.ConnectionString, "--json");
        var human = await Redispool.RunAsync("inspect", _server.ConnectionString);
        var list = await _server.ClientListAsync();

        Assert.True(result.ExitCode == 0, result.ToString());
        var fleet = Assert.Single(result.Json().GetProperty("fleets").EnumerateArray());
        Assert.Equal("orders", fleet.GetProperty("service").GetString());
        Assert.Equal("cache", fleet.GetProperty("pool").GetString());
        Assert.Equal(Key, fleet.GetProperty("key").GetString());
        Assert.Equal(2, fleet.GetProperty("live").GetInt32());
        Assert.Equal(1, fleet.GetProperty("expired").GetInt32());
        var serverTime = fleet.GetProperty("server_time_ms").GetInt64();
        Assert.InRange(serverTime, now, now + 30_000);
        int OnServer(string instance) => list.Count(c => c.Name.StartsWith($"orders:{instance}:cache:", StringComparison.Ordinal));
        Assert.Equal(OnServer("pod-a") + OnServer("pod-b") + OnServer("pod-c"), fleet.GetProperty("sockets").GetInt32());

        var instances = fleet.GetProperty("instances").EnumerateArray().ToDictionary(i => i.GetProperty("instance_id").GetString()!);
        Assert.Equal(["pod-a", "pod-b", "pod-c", "pod-gone"], instances.Keys.Order(StringComparer.Ordinal));
        foreach (var pod in new[] { "pod-a", "pod-b" })
        {
            Assert.Equal("live", instances[pod].GetProperty("state").GetString());
            // Registered within the last heartbeat (10 s) to expire 40 s later, by the server's clock.
            Assert.InRange(instances[pod].GetProperty("expires_in_ms").GetInt64(), 25_000, 40_000);
            Assert.Equal(OnServer(pod), instances[pod].GetProperty("sockets").GetInt32());
            Assert.True(OnServer(pod) >= 1, $"{pod} holds its multiplexer");
        }

        Assert.Equal("expired", instances["pod-gone"].GetProperty("state").GetString());
        Assert.InRange(instances["pod-gone"].GetProperty("expires_in_ms").GetInt64(), -30_000, -1_000);
        Assert.Equal(0, instances["pod-gone"].GetProperty("sockets").GetInt32());
        Assert.Equal("unregistered", instances["pod-c"].GetProperty("state").GetString());
        Assert.False(instances["pod-c"].TryGetProperty("expires_in_ms", out _));
        Assert.Equal(OnServer("pod-c"), instances["pod-c"].GetProperty("sockets").GetInt32());
        Assert.Equal(0, result.Json().GetProperty("unseen").GetArrayLength());

        // Read-only: the stale registration is still there for the next heartbeat to remove.
        Assert.NotNull(await db.SortedSetScoreAsync(Key, "pod-gone"));

        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("Fleet budgets", human.Output, StringComparison.Ordinal);
        Assert.Contains("2 live, 1 expired, not yet removed", human.Output, StringComparison.Ordinal);
        Assert.Contains("not registered", human.Output, StringComparison.Ordinal);
        Assert.Contains(Key, human.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_without_SCAN_still_sees_the_fleets_that_hold_sockets_and_is_told_what_it_cannot_see()
    {
        await using var a = Pool("orders", "pod-a", "cache", fleet: true, TimeSpan.FromMilliseconds(500));
        await a.ConnectAsync();
        await WaitAsync(() => Task.FromResult(a.GetStatistics().FleetInstances == 1), "the pod registered");
        // A fleet with no socket left on the server: only SCAN finds it.
        var db = _server.Admin.GetDatabase();
        var now = FleetReader.ParseTime(await db.ExecuteAsync("TIME"));
        await db.SortedSetAddAsync("redispoolkit:fleet:{billing:default}", "pod-x", now + 60_000);
        var admin = _server.Admin.GetServer(_server.EndPoint);
        await admin.ExecuteAsync("ACL", "SETUSER", "noscan", "on", ">noscan-secret", "~*", "&*", "+@all", "-scan", "-keys");
        await admin.ExecuteAsync("ACL", "SETUSER", "nokeys", "on", ">nokeys-secret", "resetkeys", "~app:*", "&*", "+@all", "-scan", "-keys");

        var noScan = await Redispool.RunAsync("inspect", $"{_server.ConnectionString},user=noscan,password=noscan-secret", "--json");
        var noScanHuman = await Redispool.RunAsync("inspect", $"{_server.ConnectionString},user=noscan,password=noscan-secret");
        var noKeys = await Redispool.RunAsync("inspect", $"{_server.ConnectionString},user=nokeys,password=nokeys-secret", "--json");
        var full = await Redispool.RunAsync("inspect", _server.ConnectionString, "--json");

        Assert.True(noScan.ExitCode == 0, noScan.ToString());
        var fleet = Assert.Single(noScan.Json().GetProperty("fleets").EnumerateArray());
        Assert.Equal("orders", fleet.GetProperty("service").GetString());
        Assert.Equal(1, fleet.GetProperty("live").GetInt32());
        var unseen = Assert.Single(noScan.Json().GetProperty("unseen").EnumerateArray());
        Assert.StartsWith("SCAN MATCH redispoolkit:fleet:*", unseen.GetProperty("what").GetString(), StringComparison.Ordinal);
        Assert.Contains("NOPERM", unseen.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains("fleets whose pools hold no socket", unseen.GetProperty("missing").GetString(), StringComparison.Ordinal);
        Assert.Contains("Not visible with this connection", noScanHuman.Output, StringComparison.Ordinal);
        Assert.Contains("SCAN MATCH redispoolkit:fleet:*", noScanHuman.Output, StringComparison.Ordinal);

        Assert.True(noKeys.ExitCode == 0, noKeys.ToString());
        Assert.Equal(0, noKeys.Json().GetProperty("fleets").GetArrayLength());
        var refused = noKeys.Json().GetProperty("unseen").EnumerateArray().ToDictionary(u => u.GetProperty("what").GetString()!, u => u.GetProperty("reason").GetString()!);
        Assert.Contains("NOPERM", refused["ZRANGE redispoolkit:fleet:{orders:cache} 0 -1 WITHSCORES"], StringComparison.Ordinal);
        Assert.Contains(refused.Keys, k => k.StartsWith("SCAN", StringComparison.Ordinal));

        // With SCAN, the socketless fleet is there too.
        Assert.Equal(["billing", "orders"], full.Json().GetProperty("fleets").EnumerateArray().Select(f => f.GetProperty("service").GetString()!).Order(StringComparer.Ordinal));
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var elapsed = Stopwatch.StartNew();
        while (!await condition())
        {
            if (elapsed.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new XunitException($"Not reached within 60 s: {what}.");
            }

            await Task.Delay(50);
        }
    }
}
