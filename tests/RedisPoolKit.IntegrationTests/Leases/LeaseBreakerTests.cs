using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Leases;

/// <summary>Leases against a full server: with the breaker open a caller needing a new socket is answered at once, and idle lease sockets give their slots back.</summary>
[Collection(FaultCollection.Name)]
public sealed class LeaseBreakerTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task With_a_lease_held_and_the_breaker_open_a_lease_needing_a_new_socket_fails_at_once()
    {
        var server = await StartServerAsync();
        var acquireTimeout = TimeSpan.FromSeconds(5);
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "lease-open",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            Leases = { MaxLeases = 4, AcquireTimeout = acquireTimeout },
            Breaker = { BreakDuration = TimeSpan.FromSeconds(30), MaxBreakDuration = TimeSpan.FromSeconds(30) },
        });
        await pool.ConnectAsync();
        var held = await pool.LeaseAsync();
        await FillAsync(server);

        // The full server refuses the socket this caller needs, which opens the breaker; the retry it then makes is refused by the breaker.
        var trigger = Stopwatch.StartNew();
        var first = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(async () => await pool.LeaseAsync());
        Output.WriteLine($"first lease answered in {trigger.ElapsedMilliseconds} ms: {first.Message}");
        Assert.True(trigger.Elapsed < acquireTimeout, $"the first caller waited out AcquireTimeout ({trigger.ElapsedMilliseconds} ms)");
        Assert.Equal(RedisPoolCircuitState.Open, pool.CircuitState);

        // AcquireTimeout is 5 s: a caller left waiting for the held lease would take all of it (it measures a few ms).
        var watch = Stopwatch.StartNew();
        var open = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(async () => await pool.LeaseAsync());
        watch.Stop();
        Output.WriteLine($"lease with the breaker open and one lease held rejected in {watch.Elapsed.TotalMilliseconds:F1} ms: {open.Message}");
        Assert.True(watch.Elapsed < acquireTimeout, $"circuit-open rejection took {watch.ElapsedMilliseconds} ms, as long as AcquireTimeout");
        Assert.True(open.RetryAfter > TimeSpan.Zero);
        Assert.Equal(1, pool.GetStatistics().LeasesUsed);
        Assert.Equal(0, pool.GetStatistics().LeaseWaiters);

        // The held socket keeps serving: returned, it is leased again at once with the breaker still open.
        await held.DisposeAsync();
        await using var again = await pool.LeaseAsync();
        Assert.Equal(RedisPoolCircuitState.Open, pool.CircuitState);
    }

    [Fact]
    public async Task When_the_breaker_opens_idle_lease_sockets_close_so_its_probe_finds_a_slot_on_a_server_still_full()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "lease-idle",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            Leases = { MaxLeases = 2, MinIdle = 2 },
            Breaker = { BreakDuration = TimeSpan.FromSeconds(1), MaxBreakDuration = TimeSpan.FromSeconds(2) },
        });
        await pool.ConnectAsync();
        var leases = new[] { await pool.LeaseAsync(), await pool.LeaseAsync() };
        foreach (var lease in leases)
        {
            await lease.DisposeAsync();
        }

        // The creator may still be opening the second socket for MinIdle when the leases come back.
        await Eventually.TrueAsync(() => Task.FromResult(pool.GetStatistics().LeasesIdle == 2), TimeSpan.FromSeconds(10), "both lease sockets idle");
        await FillAsync(server);
        var maxclients = (await server.InfoAsync("clients"))["maxclients"];

        // Any socket the full server refuses opens the breaker: here one more lease socket, asked of the factory directly
        // so that the two idle ones stay idle.
        var refused = await Record.ExceptionAsync(() => pool.ConnectionFactory.ConnectAsync(SocketRole.Lease, 9, CancellationToken.None));
        Assert.IsAssignableFrom<RedisException>(refused);
        await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState != RedisPoolCircuitState.Closed), TimeSpan.FromSeconds(10), "the breaker opens on the refused socket");

        await Eventually.TrueAsync(async () => !(await server.ClientListAsync()).Any(c => c.Name.Contains(":lease-idle:lease", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the idle lease sockets are closed, MinIdle included");
        Assert.Equal(0, pool.GetStatistics().LeaseSockets);

        // Nobody raised maxclients: only the slots the idle sockets gave back let the half-open probe through.
        await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState == RedisPoolCircuitState.Closed), TimeSpan.FromSeconds(15), "the half-open probe closes the breaker");
        Assert.Equal(maxclients, (await server.InfoAsync("clients"))["maxclients"]);

        // Closed again, the pool restores MinIdle.
        await Eventually.TrueAsync(() => Task.FromResult(pool.GetStatistics().LeasesIdle == 2), TimeSpan.FromSeconds(10), "MinIdle is refilled once the breaker closes");
    }

    /// <summary>Makes the server full: maxclients becomes the current number of clients.</summary>
    private static async Task FillAsync(RedisServer server)
    {
        var connected = (await server.InfoAsync("clients"))["connected_clients"];
        await server.ConfigSetAsync("maxclients", connected);
    }
}
