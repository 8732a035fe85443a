using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Monitoring;

/// <summary>The health check's three states, each reached by doing to a real server what an incident does.</summary>
[Collection(FaultCollection.Name)]
public sealed class HealthCheckScenarioTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    private static RedisPoolOptions Options(string name, string configuration) => new()
    {
        Name = name,
        ServiceName = "tests",
        Configuration = configuration,
        ConnectTimeout = TimeSpan.FromSeconds(2),
        Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
        Breaker = { BreakDuration = TimeSpan.FromSeconds(1), MaxBreakDuration = TimeSpan.FromSeconds(2) },
    };

    private async Task<HealthCheckResult> CheckAsync(RedisPoolHealthCheck check)
    {
        var result = await check.CheckHealthAsync(new HealthCheckContext());
        Output.WriteLine($"{result.Status}: {result.Description}");
        return result;
    }

    [Fact]
    public async Task A_connected_pool_on_a_quiet_server_is_healthy()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("quiet", server.ConnectionString));
        await pool.ConnectAsync();
        await pool.GetDatabase().PingAsync();
        var check = new RedisPoolHealthCheck(pool, TimeProvider.System);

        await Eventually.TrueAsync(() => pool.GetStatistics().LastServerUtilization is not null, s_deadline, "the monitor's first reading");
        var result = await CheckAsync(check);

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal(nameof(RedisPoolCircuitState.Closed), result.Data["circuit_state"]);
        Assert.True((int)result.Data["sockets_connected"] >= 1);
        Assert.Equal(nameof(RedisServerUtilizationLevel.Normal), result.Data["server_utilization_level"]);
        Assert.True((double)result.Data["server_utilization"] < RedisPoolDefaults.WarningUtilization);
    }

    [Fact]
    public async Task Warning_utilization_makes_the_pool_degraded_with_the_servers_numbers()
    {
        var server = await StartServerAsync(new RedisServerOptions { Arguments = { "--maxclients", "20" } });
        await using var pool = new RedisPool(Options("warned", server.ConnectionString));
        var events = new ConcurrentQueue<RedisServerUtilizationEventArgs>();
        pool.ServerUtilizationChanged += (_, e) => events.Enqueue(e);
        await pool.ConnectAsync();
        var check = new RedisPoolHealthCheck(pool, TimeProvider.System);
        var sockets = new List<TcpClient>();
        try
        {
            // 16 and 17 of 20: at or above the 0.8 warning, below the 0.95 critical level.
            await FillToAsync(server, sockets, 17);
            await Eventually.TrueAsync(() => events.Any(e => e.Level == RedisServerUtilizationLevel.Warning), s_deadline, "the pool's monitor to raise the warning");

            var result = await CheckAsync(check);

            Assert.Equal(HealthStatus.Degraded, result.Status);
            Assert.Contains("Warning", result.Description, StringComparison.Ordinal);
            Assert.Equal(nameof(RedisServerUtilizationLevel.Warning), result.Data["server_utilization_level"]);
            Assert.Equal(20L, Convert.ToInt64(result.Data["server_maxclients"], CultureInfo.InvariantCulture));
            Assert.InRange(Convert.ToInt64(result.Data["server_connected_clients"], CultureInfo.InvariantCulture), 16, 18);
            Assert.InRange((double)result.Data["server_utilization"], RedisPoolDefaults.WarningUtilization, RedisPoolDefaults.CriticalUtilization);
            Assert.Equal(nameof(RedisPoolCircuitState.Closed), result.Data["circuit_state"]);

            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            sockets.Clear();
            await Eventually.TrueAsync(async () => (await check.CheckHealthAsync(new HealthCheckContext())).Status == HealthStatus.Healthy, s_deadline, "healthy again once the raw sockets are gone");
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task An_open_breaker_with_no_socket_is_unhealthy_and_freeing_slots_makes_it_healthy_again()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("cutoff", server.ConnectionString));
        await pool.ConnectAsync();
        await pool.GetDatabase().PingAsync();
        var check = new RedisPoolHealthCheck(pool, TimeProvider.System);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(check)).Status);

        // Full after the kill: a limit at the current count would hand the killed socket's slot straight back to its reconnect.
        var clients = await server.ClientListAsync();
        var victims = clients.Where(c => c.Name.Contains(":cutoff:", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(victims);
        await server.ConfigSetAsync("maxclients", (clients.Count - victims.Count).ToString(CultureInfo.InvariantCulture));
        foreach (var victim in victims)
        {
            await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
        }

        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await using var lease = await pool.LeaseAsync();
            }
            catch (RedisPoolException)
            {
            }

            return pool.CircuitState == RedisPoolCircuitState.Open && pool.GetStatistics().Multiplexers == 0;
        }, s_deadline, "the breaker to open with the multiplexer cut off");

        var unhealthy = await CheckAsync(check);
        Assert.Equal(HealthStatus.Unhealthy, unhealthy.Status);
        Assert.Contains("breaker is open", unhealthy.Description, StringComparison.Ordinal);
        Assert.Equal(0, unhealthy.Data["sockets_connected"]);
        Assert.Equal(nameof(RedisPoolCircuitState.Open), unhealthy.Data["circuit_state"]);

        await server.ConfigSetAsync("maxclients", "1000");
        var recovery = System.Diagnostics.Stopwatch.StartNew();
        // The breaker closes first and the multiplexer reconnects after it: healthy with a socket serving again.
        await Eventually.TrueAsync(
            async () => await check.CheckHealthAsync(new HealthCheckContext()) is { Status: HealthStatus.Healthy } r && (int)r.Data["sockets_connected"] >= 1,
            s_deadline,
            "healthy with a connected socket after the slots were freed");
        Output.WriteLine($"healthy again {recovery.ElapsedMilliseconds} ms after the slots were freed");
        var healthy = await CheckAsync(check);
        Assert.Equal(nameof(RedisPoolCircuitState.Closed), healthy.Data["circuit_state"]);
        Assert.Equal("PONG", (await pool.GetDatabase().ExecuteAsync("PING")).ToString());
    }

    [Fact]
    public async Task An_open_or_half_open_breaker_with_sockets_still_serving_is_degraded()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        var options = Options("serving", proxy.ConnectionString);
        options.ConnectTimeout = TimeSpan.FromSeconds(3);
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        await db.PingAsync();
        var check = new RedisPoolHealthCheck(pool, TimeProvider.System);

        await FillAsync(server);
        await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync());
        await Eventually.TrueAsync(() => pool.CircuitState == RedisPoolCircuitState.Open, s_deadline, "the breaker to open on the full server");

        var open = await CheckAsync(check);
        Assert.Equal(HealthStatus.Degraded, open.Status);
        Assert.Contains("breaker is open", open.Description, StringComparison.Ordinal);
        Assert.True((int)open.Data["sockets_connected"] >= 1);
        Assert.Equal(nameof(RedisPoolCircuitState.Open), open.Data["circuit_state"]);
        Assert.Equal("PONG", (await db.ExecuteAsync("PING")).ToString());

        // A probe to a silent endpoint waits the whole ConnectTimeout: half-open lasts 3 s instead of a millisecond.
        proxy.SetFault(ProxyFault.Blackhole, FaultScope.NewConnections);
        await Eventually.TrueAsync(() => pool.CircuitState == RedisPoolCircuitState.HalfOpen, s_deadline, "the break to elapse and the probe to start");

        var halfOpen = await CheckAsync(check);
        Assert.Equal(HealthStatus.Degraded, halfOpen.Status);
        Assert.Contains("half-open", halfOpen.Description, StringComparison.Ordinal);
        Assert.Equal(nameof(RedisPoolCircuitState.HalfOpen), halfOpen.Data["circuit_state"]);
    }

    /// <summary>Makes the server full: maxclients becomes the current number of clients.</summary>
    private static async Task FillAsync(RedisServer server)
    {
        var connected = (await server.InfoAsync("clients"))["connected_clients"];
        await server.ConfigSetAsync("maxclients", connected);
    }

    private static async Task<long> ConnectedClientsAsync(RedisServer server) =>
        long.Parse((await server.InfoAsync("clients"))["connected_clients"], CultureInfo.InvariantCulture);

    private static async Task FillToAsync(RedisServer server, List<TcpClient> sockets, long target)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (await ConnectedClientsAsync(server) < target)
        {
            Assert.True(watch.Elapsed < s_deadline, $"could not fill the server to {target} clients");
            var before = await ConnectedClientsAsync(server);
            sockets.Add(await server.ConnectRawAsync());
            await Eventually.TrueAsync(async () => await ConnectedClientsAsync(server) > before, s_deadline, "the server to count the new socket");
        }
    }
}
