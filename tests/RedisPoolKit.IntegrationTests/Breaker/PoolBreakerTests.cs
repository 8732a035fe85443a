using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Breaker;

/// <summary>The pool against a full server: the breaker stops new sockets while existing ones keep serving (promises 5 and 6).</summary>
[Collection(FaultCollection.Name)]
public sealed class PoolBreakerTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task A_full_server_opens_the_breaker_while_existing_sockets_keep_serving_and_recovery_follows()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "full",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            // Generous, so that "rejected without a connect" is told apart from a wait by a bound no scheduling delay reaches.
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Breaker = { BreakDuration = TimeSpan.FromSeconds(1), MaxBreakDuration = TimeSpan.FromSeconds(2) },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        await FillAsync(server);

        var first = await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync());
        Output.WriteLine($"first lease: {first.GetType().Name}: {first.Message}");
        await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState != RedisPoolCircuitState.Closed), TimeSpan.FromSeconds(15), "the breaker opens on a classified max-clients failure");

        Assert.True(await db.StringSetAsync("still", "serving"));
        Assert.Equal("serving", await db.StringGetAsync("still"));

        var watch = Stopwatch.StartNew();
        var open = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(async () => await pool.LeaseAsync());
        watch.Stop();
        Output.WriteLine($"second lease rejected in {watch.Elapsed.TotalMilliseconds:F2} ms: {open.Message}");
        // Fast means no connect and no wait: it ends well before ConnectTimeout (it measures a few ms on a quiet machine).
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"circuit-open rejection took {watch.ElapsedMilliseconds} ms, as long as ConnectTimeout");
        Assert.True(open.RetryAfter > TimeSpan.Zero);

        // Recovery: free the slots; the half-open probe closes the breaker within one break interval + connect time.
        await server.ConfigSetAsync("maxclients", "1000");
        var recovery = Stopwatch.StartNew();
        RedisLease? lease = null;
        while (lease is null)
        {
            try
            {
                lease = await pool.LeaseAsync();
            }
            catch (RedisPoolException) when (recovery.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(50);
            }
        }

        Output.WriteLine($"served a lease again {recovery.ElapsedMilliseconds} ms after the slots were freed");
        // One break interval (at most 1.25 x MaxBreakDuration 2 s) + a connect to a free server, and 3 s for a starved
        // 2-core machine; a backoff that ran past MaxBreakDuration (1, 2, 4, 8 s...) would miss it.
        Assert.True(recovery.Elapsed < TimeSpan.FromSeconds(2.5 + 3), $"recovery took {recovery.ElapsedMilliseconds} ms");
        Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);
        await lease.DisposeAsync();
    }

    [Fact]
    public async Task Multiplexers_cut_off_from_a_full_server_do_not_storm_it()
    {
        var server = await StartServerAsync();
        var window = TimeSpan.FromSeconds(10);
        var breakDuration = TimeSpan.FromSeconds(2);
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "storm",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            MinMultiplexers = 4,
            MaxMultiplexers = 4,
            MaxConnections = 4,
            Breaker = { BreakDuration = breakDuration, MaxBreakDuration = breakDuration },
        });
        await pool.ConnectAsync();

        var (rejectedByPool, poolWindow) = await CutOffAndCountAsync(server, ":storm:", window, async () =>
        {
            // Commands with no live socket fail fast, not after a backlog timeout: a connection error, never a timeout.
            var latencies = new List<double>();
            var errors = new List<Exception>();
            for (var i = 0; i < 20; i++)
            {
                var watch = Stopwatch.StartNew();
                try
                {
                    await pool.GetDatabase().StringGetAsync("k");
                }
                catch (RedisException ex)
                {
                    errors.Add(ex);
                }

                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            Output.WriteLine($"command with no live socket: median {latencies[10]:F2} ms, max {latencies[^1]:F2} ms; {errors.Count} failed: {string.Join(", ", errors.Select(e => e.GetType().Name).Distinct())}");
            Assert.DoesNotContain(errors, e => e is RedisTimeoutException);
            // It measures a few ms on a quiet machine; the backlog would wait out the 5 s command timeout.
            Assert.True(latencies[10] < 5000, $"median {latencies[10]:F1} ms, as long as the command timeout");
        });

        // The same four sockets as plain StackExchange.Redis multiplexers with default reconnects.
        await server.ConfigSetAsync("maxclients", "1000");
        var plain = new List<ConnectionMultiplexer>();
        for (var i = 0; i < 4; i++)
        {
            var options = ConfigurationOptions.Parse(server.ConnectionString);
            options.ClientName = $"plain:{i}";
            options.AbortOnConnectFail = false;
            plain.Add(await ConnectionMultiplexer.ConnectAsync(options));
        }

        var (rejectedByPlain, _) = await CutOffAndCountAsync(server, "plain:", window, () => Task.CompletedTask);
        foreach (var multiplexer in plain)
        {
            await multiplexer.DisposeAsync();
        }

        Output.WriteLine($"rejected_connections over {window.TotalSeconds:F0} s: RedisPoolKit {rejectedByPool} (BreakDuration {breakDuration.TotalSeconds:F0} s), plain StackExchange.Redis {rejectedByPlain}");
        // One probe per break interval at most; a late timer on a starved machine only means fewer. Counted over the
        // window as it really ran (the commands above may take longer than it on a starved machine).
        var allowed = (int)(poolWindow / breakDuration) + 1;
        Assert.InRange(rejectedByPool, 0, allowed);
    }

    /// <summary>Lowers maxclients to the current count, kills the sockets named <paramref name="nameFragment"/>, and counts rejected connections over the window.</summary>
    private async Task<(long Rejected, TimeSpan Window)> CutOffAndCountAsync(RedisServer server, string nameFragment, TimeSpan window, Func<Task> during)
    {
        await FillAsync(server);
        var victims = (await server.ClientListAsync()).Where(c => c.Name.Contains(nameFragment, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(victims);
        var before = await RejectedAsync(server);
        foreach (var victim in victims)
        {
            await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
        }

        var watch = Stopwatch.StartNew();
        await during();
        var rest = window - watch.Elapsed;
        if (rest > TimeSpan.Zero)
        {
            await Task.Delay(rest);
        }

        var rejected = await RejectedAsync(server) - before;
        return (rejected, watch.Elapsed);
    }

    /// <summary>Makes the server full: maxclients becomes the current number of clients.</summary>
    private static async Task FillAsync(RedisServer server)
    {
        var connected = (await server.InfoAsync("clients"))["connected_clients"];
        await server.ConfigSetAsync("maxclients", connected);
    }

    private static async Task<long> RejectedAsync(RedisServer server) =>
        long.Parse((await server.InfoAsync("stats"))["rejected_connections"], CultureInfo.InvariantCulture);
}
