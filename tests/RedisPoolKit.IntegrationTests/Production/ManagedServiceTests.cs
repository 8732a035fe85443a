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
}
