using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Fleet;

/// <summary>The registration as a user sees it: bound from configuration, on the documented key, in server time, with least privilege.</summary>
[Collection(FaultCollection.Name)]
public sealed class FleetRegistrationTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_pool_bound_from_configuration_registers_on_the_documented_key_with_a_server_time_expiry()
    {
        var server = await StartServerAsync();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:orders:Configuration"] = server.ConnectionString,
            ["Redis:orders:ServiceName"] = "order-service",
            ["Redis:orders:InstanceId"] = "pod-a",
            ["Redis:orders:Fleet:Enabled"] = "true",
            ["Redis:orders:Fleet:MaxConnections"] = "6",
            ["Redis:orders:Fleet:HeartbeatInterval"] = "00:00:01",
            ["Redis:orders:Fleet:InstanceTtl"] = "00:00:30",
        });
        builder.Services.AddRedisPool("orders", builder.Configuration.GetSection("Redis:orders"));
        using var host = builder.Build();
        await host.StartAsync();
        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("orders");

        await Eventually.TrueAsync(() => pool.GetStatistics().FleetInstances == 1, s_deadline, "the pool registered itself");
        await Eventually.TrueAsync(() => pool.GetStatistics().EffectiveMaxConnections == 6, s_deadline, "alone, it grows to Fleet.MaxConnections (below its own 8)");

        var admin = server.Admin.GetDatabase();
        var entries = await admin.SortedSetRangeByRankWithScoresAsync("redispoolkit:fleet:{order-service:orders}");
        var entry = Assert.Single(entries);
        Assert.Equal("pod-a", (string?)entry.Element);
        var time = (RedisResult[])(await admin.ExecuteAsync("TIME"))!;
        var serverNowMs = (long.Parse(time[0].ToString(), CultureInfo.InvariantCulture) * 1000) + (long.Parse(time[1].ToString(), CultureInfo.InvariantCulture) / 1000);
        Output.WriteLine($"expiry score {entry.Score:F0}, server now {serverNowMs}: {entry.Score - serverNowMs:F0} ms ahead");

        // Renewed to expire InstanceTtl (30 s) later by the server's clock: never further ahead than that (the entry is
        // read before TIME), and behind it by the age of the last renewal, one heartbeat (1 s) on a quiet machine; a
        // starved 2-core machine may run the heartbeat and this test's two reads seconds late.
        Assert.InRange(entry.Score - serverNowMs, 30_000 - 1_000 - 5_000, 30_500);
        var keyTtl = await admin.KeyTimeToLiveAsync("redispoolkit:fleet:{order-service:orders}");
        Assert.NotNull(keyTtl);
        Assert.InRange(keyTtl.Value, TimeSpan.FromSeconds(55), TimeSpan.FromSeconds(60));

        await host.StopAsync();
        Assert.Empty(await admin.SortedSetRangeByRankAsync("redispoolkit:fleet:{order-service:orders}"));
    }

    [Fact]
    public async Task A_user_allowed_only_the_documented_commands_on_the_documented_keys_registers()
    {
        var server = await StartServerAsync();
        await server.Admin.GetServer(server.EndPoint).ExecuteAsync(
            "ACL", "SETUSER", "fleet-app", "on", ">app-secret", "~app:*", "~redispoolkit:fleet:*", "-@all",
            "+get", "+set", "+ping", "+hello", "+client|setname", "+client|id", "+info", "+echo",
            "+zadd", "+zremrangebyscore", "+zrange", "+zrem", "+pexpire", "+time", "+multi", "+exec");
        var logs = new CapturingLoggerProvider();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "orders",
            ServiceName = "least",
            InstanceId = "pod-a",
            Configuration = $"{server.EndPoint},user=fleet-app,password=app-secret",
            Fleet = { Enabled = true, MaxConnections = 6, HeartbeatInterval = TimeSpan.FromMilliseconds(500), InstanceTtl = TimeSpan.FromSeconds(5) },
        }, new Production.CapturingLoggerFactory(logs));
        await pool.ConnectAsync();
        await Eventually.TrueAsync(() => pool.GetStatistics().EffectiveMaxConnections == 6, s_deadline, "the heartbeat succeeds with the documented commands only: " + AclLog(server));
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == 1801);
        await pool.GetDatabase().StringSetAsync("app:k", "v");
    }

    [Fact]
    public async Task A_user_refused_the_fleet_commands_holds_only_what_it_needs_and_says_why()
    {
        var server = await StartServerAsync();
        await server.Admin.GetServer(server.EndPoint).ExecuteAsync(
            "ACL", "SETUSER", "plain-app", "on", ">app-secret", "~app:*", "-@all",
            "+get", "+set", "+ping", "+hello", "+client|setname", "+client|id", "+info", "+echo", "+time", "+multi", "+exec");
        var logs = new CapturingLoggerProvider();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "orders",
            ServiceName = "refused",
            InstanceId = "pod-a",
            Configuration = $"{server.EndPoint},user=plain-app,password=app-secret",
            Fleet = { Enabled = true, MaxConnections = 6, HeartbeatInterval = TimeSpan.FromMilliseconds(500), InstanceTtl = TimeSpan.FromSeconds(5) },
        }, new Production.CapturingLoggerFactory(logs));
        await pool.ConnectAsync();

        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.EventId.Id == 1801), s_deadline, "the refused heartbeat is logged");
        Assert.Contains(logs.Lines, l => l.EventId.Id == 1801 && l.Text.Contains("EXECABORT", StringComparison.Ordinal));
        Assert.Equal(2, pool.GetStatistics().EffectiveMaxConnections);
        Assert.Null(pool.GetStatistics().FleetInstances);
        await pool.GetDatabase().StringSetAsync("app:k", "v");
    }

    private static string AclLog(RedisServer server) =>
        string.Join("; ", ((RedisResult[])server.Admin.GetServer(server.EndPoint).Execute("ACL", "LOG")!).Select(r => string.Join(",", ((RedisResult[])r!).Select(x => x.ToString()))));
}
