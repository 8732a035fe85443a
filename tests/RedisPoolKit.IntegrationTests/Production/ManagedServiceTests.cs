using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>
/// Managed services disable CONFIG and rename commands; the pool's own commands (names, INFO, CLIENT ID and
/// CLIENT UNBLOCK) go through the configuration's command map, and maxclients comes from INFO clients.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ManagedServiceTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task With_CONFIG_disabled_and_CLIENT_renamed_every_pool_feature_works_through_the_command_map()
    {
        var options = new RedisServerOptions { Arguments = { "--maxclients", "500" } };
        options.RenamedCommands["CONFIG"] = string.Empty;
        options.RenamedCommands["CLIENT"] = "cl-7f3a";
        var server = await StartServerAsync(options);
        var logs = new CapturingLoggerProvider();
        using var meters = new ScopedMeterFactory();
        await using var pool = new RedisPool(
            new RedisPoolOptions
            {
                Name = "managed",
                Configuration = server.ConnectionString,
                ServiceName = "tests",
                MaxMultiplexers = 1,
            },
            new CapturingLoggerFactory(logs),
            TimeProvider.System,
            meters);
        await pool.ConnectAsync();

        // maxclients from INFO clients: CONFIG is never needed.
        var reading = await pool.Monitor!.PollOnceAsync();
        Assert.NotNull(reading);
        Assert.Equal(500, reading.Value.MaxClients);
        Assert.NotNull(reading.Value.Utilization);

        // Names through the renamed CLIENT.
        Assert.Contains(await server.ClientListAsync(), c => c.Name.StartsWith("tests:", StringComparison.Ordinal));

        // CLIENT ID and CLIENT UNBLOCK through the renamed CLIENT: a cancelled BLPOP keeps its socket.
        await using (var lease = await pool.LeaseAsync())
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lease.BlockingLeftPopAsync(["empty"], TimeSpan.FromSeconds(20), cts.Token));
        }

        Assert.Equal(1, pool.GetStatistics().LeaseSockets);
        await using (var again = await pool.LeaseAsync())
        {
            await again.Database.ListRightPushAsync("q", "x");
            Assert.Equal("x", (string?)(await again.BlockingLeftPopAsync(["q"], TimeSpan.FromSeconds(5)))!.Value.Value);
        }

        Assert.DoesNotContain(logs.Lines, l => l.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
    }

    [Fact]
    public async Task A_command_the_configurations_command_map_disables_is_said_once_with_the_map_as_the_remedy()
    {
        var server = await StartServerAsync();
        var logs = new CapturingLoggerProvider();
        await using var pool = new RedisPool(
            new RedisPoolOptions
            {
                Name = "mapped",
                Configuration = server.ConnectionString + ",$CLIENT=,$INFO=",
                ServiceName = "tests",
                MaxMultiplexers = 1,
                Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
            },
            new CapturingLoggerFactory(logs));
        await pool.ConnectAsync();
        await Eventually.TrueAsync(() => pool.Monitor!.Unavailable is not null, TimeSpan.FromSeconds(15), "the monitor finds INFO disabled");

        // The server would run CLIENT SETNAME and INFO for this user: granting them in an ACL would change nothing.
        var names = Assert.Single(logs.Lines, l => l.EventId.Id == 501 && l.Text.Contains("CLIENT SETNAME", StringComparison.Ordinal));
        Assert.Contains("'$CLIENT='", names.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("ACL SETUSER", names.Text, StringComparison.Ordinal);
        var monitor = Assert.Single(logs.Lines, l => l.EventId.Id == 501 && l.Text.Contains("INFO", StringComparison.Ordinal) && !l.Text.Contains("CLIENT SETNAME", StringComparison.Ordinal));
        Assert.Contains("'$INFO='", monitor.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("ACL SETUSER", monitor.Text, StringComparison.Ordinal);
    }
}
