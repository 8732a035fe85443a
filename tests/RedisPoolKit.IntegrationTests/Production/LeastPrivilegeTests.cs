using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>
/// A least-privilege ACL user takes pool features away one by one: each is turned off and said once, naming the
/// command and the rule to grant, and nothing the application does ever sees a raw permission error for it.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class LeastPrivilegeTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private const int FeatureOff = 501;
    private const int CancelClosesSocket = 502;
    private const int LeaseSocketDiscarded = 202;
    private const int MonitorNoConnection = 303;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_user_without_admin_or_info_keeps_every_command_and_loses_the_monitor_and_unblocking_once_each()
    {
        var server = await StartServerAsync();
        await CreateUserAsync(server, "app", "+@read", "+@write", "+@connection", "-@admin");
        var logs = new CapturingLoggerProvider();
        using var meters = new ScopedMeterFactory();
        await using var pool = await StartPoolAsync(server, "app", logs, meters);
        using var unblockUnavailable = new MetricCollector<long>(meters, RedisPoolInstrumentNames.MeterName, RedisPoolInstrumentNames.UnblockUnavailable);

        // The monitor finds INFO refused once, says so once, and stops instead of claiming it has no connection.
        await Eventually.TrueAsync(() => pool.Monitor!.Unavailable is not null, Timeout, "the monitor finds INFO refused");
        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await pool.Monitor!.PollOnceAsync());
        }

        var monitorOff = Assert.Single(logs.Lines, l => l.EventId.Id == FeatureOff && l.Text.Contains("INFO", StringComparison.Ordinal));
        Assert.Contains("+info", monitorOff.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == MonitorNoConnection);
        Assert.Null(pool.GetStatistics().LastServerUtilization);

        var health = await new RedisPoolHealthCheck(pool, TimeProvider.System).CheckHealthAsync(new HealthCheckContext());
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.StartsWith("unavailable", (string)health.Data["server_monitor"], StringComparison.Ordinal);
        Assert.False(health.Data.ContainsKey("server_utilization_level"));

        // Commands and names work: this user may run CLIENT SETNAME and CLIENT ID.
        var db = pool.GetDatabase();
        await db.StringSetAsync("k", "v");
        Assert.Equal("v", (string?)await db.StringGetAsync("k"));
        Assert.Contains(await server.ClientListAsync(), c => c.Name.StartsWith("tests:", StringComparison.Ordinal));

        // CLIENT UNBLOCK is @admin: each cancelled BLPOP closes its socket, counted every time, said once.
        await CancelTwoBlockingPopsAsync(pool);
        Assert.Equal(2, unblockUnavailable.GetMeasurementSnapshot().EvaluateAsCounter());
        var unblockOff = Assert.Single(logs.Lines, l => l.EventId.Id == FeatureOff && l.Text.Contains("CLIENT UNBLOCK", StringComparison.Ordinal));
        Assert.Contains("+client|unblock", unblockOff.Text, StringComparison.Ordinal);
        Assert.Single(logs.Lines, l => l.EventId.Id == CancelClosesSocket);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == LeaseSocketDiscarded);
        Assert.Equal(2, logs.Lines.Count(l => l.EventId.Id == FeatureOff));
        await AssertLeasingStillWorksAsync(pool);
    }

    [Fact]
    public async Task A_user_without_CLIENT_leases_without_a_client_id_and_says_once_that_names_are_off()
    {
        var server = await StartServerAsync();
        await CreateUserAsync(server, "app", "+@read", "+@write", "+@connection", "-@admin", "-client");
        var logs = new CapturingLoggerProvider();
        await using var pool = await StartPoolAsync(server, "app", logs);

        var namesOff = Assert.Single(logs.Lines, l => l.EventId.Id == FeatureOff && l.Text.Contains("CLIENT SETNAME", StringComparison.Ordinal));
        Assert.Contains("+client|setname", namesOff.Text, StringComparison.Ordinal);

        // Leasing needs no CLIENT ID: it only served unblocking, which is off (said once, naming the rule).
        await using (var lease = await pool.LeaseAsync())
        {
            await lease.Database.ListRightPushAsync("q", "item");
            var popped = await lease.BlockingLeftPopAsync(["q"], TimeSpan.FromSeconds(5));
            Assert.Equal("item", (string?)popped!.Value.Value);
        }

        Assert.Single(logs.Lines, l => l.EventId.Id == FeatureOff && l.Text.Contains("+client|id", StringComparison.Ordinal));
        await CancelTwoBlockingPopsAsync(pool);
        Assert.Single(logs.Lines, l => l.EventId.Id == CancelClosesSocket);

        // Further sockets (a second lease) say nothing again.
        await using (await pool.LeaseAsync())
        await using (await pool.LeaseAsync())
        {
        }

        Assert.Single(logs.Lines, l => l.EventId.Id == FeatureOff && l.Text.Contains("CLIENT SETNAME", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Text.Contains("RedisServerException", StringComparison.Ordinal) && l.Level >= LogLevel.Warning && l.EventId.Id != FeatureOff);
        await AssertLeasingStillWorksAsync(pool);
    }

    [Fact]
    public async Task The_documented_least_privilege_user_keeps_every_feature()
    {
        var server = await StartServerAsync();
        await CreateUserAsync(server, "app", "+@read", "+@write", "+@connection", "-@admin", "+info", "+client|unblock", "+config|get");
        var logs = new CapturingLoggerProvider();
        using var meters = new ScopedMeterFactory();
        await using var pool = await StartPoolAsync(server, "app", logs, meters);
        using var unblockUnavailable = new MetricCollector<long>(meters, RedisPoolInstrumentNames.MeterName, RedisPoolInstrumentNames.UnblockUnavailable);

        var reading = await pool.Monitor!.PollOnceAsync();
        Assert.NotNull(reading);
        Assert.NotNull(reading.Value.Utilization);
        await using (var lease = await pool.LeaseAsync())
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lease.BlockingLeftPopAsync(["empty"], TimeSpan.FromSeconds(20), cts.Token));
        }

        Assert.Equal(1, pool.GetStatistics().LeaseSockets);
        Assert.Empty(unblockUnavailable.GetMeasurementSnapshot());
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id is FeatureOff or CancelClosesSocket);
    }

    private static async Task CancelTwoBlockingPopsAsync(RedisPool pool)
    {
        for (var i = 0; i < 2; i++)
        {
            await using var lease = await pool.LeaseAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            var cancelled = await Assert.ThrowsAnyAsync<Exception>(() => lease.BlockingLeftPopAsync(["empty"], TimeSpan.FromSeconds(20), cts.Token));
            Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        }

        await Eventually.TrueAsync(() => pool.GetStatistics().LeaseSockets == 0, Timeout, "each cancelled lease socket is closed, not returned");
    }

    private static async Task AssertLeasingStillWorksAsync(RedisPool pool)
    {
        await using var lease = await pool.LeaseAsync();
        await lease.Database.ListRightPushAsync("after", "x");
        Assert.Equal("x", (string?)(await lease.BlockingLeftPopAsync(["after"], TimeSpan.FromSeconds(5)))!.Value.Value);
    }

    private static Task CreateUserAsync(RedisServer server, string user, params string[] rules) =>
        server.Admin.GetServer(server.EndPoint).ExecuteAsync("ACL", ["SETUSER", user, "on", ">pw-" + user, "~*", "&*", .. rules]);

    private static async Task<RedisPool> StartPoolAsync(RedisServer server, string user, CapturingLoggerProvider logs, IMeterFactory? meters = null)
    {
        var pool = new RedisPool(
            new RedisPoolOptions
            {
                Name = "acl",
                Configuration = $"{server.ConnectionString},user={user},password=pw-{user}",
                ServiceName = "tests",
                MaxMultiplexers = 1,
                Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
            },
            new CapturingLoggerFactory(logs),
            TimeProvider.System,
            meters);
        await pool.ConnectAsync();
        return pool;
    }
}
