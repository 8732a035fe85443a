using System.Diagnostics;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Breaker;

/// <summary>
/// Against a standalone server and the Sentinel master the breaker's half-open probe counts against <c>MaxConnections</c>
/// like every other socket of the pool: by the server's <c>CLIENT LIST</c> and <c>rejected_connections</c>, the pool
/// never has more sockets there.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ProbeBudgetTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task The_probe_stands_in_for_a_lost_socket_so_the_server_never_sees_more_than_MaxConnections(int maxConnections)
    {
        var server = await StartServerAsync();
        await ProveStandInAsync(server, server.ConnectionString, $"standin{maxConnections}", maxConnections);
    }

    [Fact]
    public async Task Under_Sentinel_the_probe_counts_against_the_masters_MaxConnections()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var set = await RedisSentinelSet.StartAsync(cancellationToken: bound.Token);
        try
        {
            await ProveStandInAsync(await set.GetMasterAsync(), set.ConnectionString, "sentinelstandin", 1);
        }
        catch
        {
            Output.WriteLine(set.LogTails());
            throw;
        }
    }

    /// <summary>
    /// Makes <paramref name="server"/> full, takes one of the pool's sockets away so that its reconnects are refused, and
    /// gives the server room again for exactly the pool's sockets: the probe must stand in for the lost socket throughout.
    /// </summary>
    private async Task ProveStandInAsync(RedisServer server, string configuration, string name, int maxConnections)
    {
        var transitions = new List<RedisPoolCircuitStateChangedEventArgs>();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = name,
            ServiceName = "tests",
            Configuration = configuration,
            MaxConnections = maxConnections,
            MinMultiplexers = maxConnections,
            MaxMultiplexers = maxConnections,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Breaker = { BreakDuration = BreakDuration, MaxBreakDuration = BreakDuration },
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        pool.CircuitStateChanged += (_, e) =>
        {
            lock (transitions)
            {
                transitions.Add(e);
            }
        };
        await pool.ConnectAsync();
        var marker = $":{name}:";
        await Eventually.TrueAsync(async () => (await PoolSocketsAsync(server, marker)).Count == maxConnections, TimeSpan.FromSeconds(10), "the pool's multiplexers are connected");

        // The pool's sockets are its named ones and its nameless raw probe (a replica's link is nameless too, flagged S).
        using var sampling = new CancellationTokenSource();
        var sampler = SampleAsync(server, c => c.Name.Contains(marker, StringComparison.Ordinal) || (c.Name.Length == 0 && !c.Flags.Contains('S', StringComparison.Ordinal)), sampling.Token);
        try
        {
            // The server gets one slot fewer than it has clients, then loses one of the pool's sockets: its reconnects are refused.
            // Counted by CLIENT LIST: INFO's connected_clients leaves out a master's replicas, which hold slots all the same.
            var connected = (await server.ClientListAsync()).Count;
            await server.ConfigSetAsync("maxclients", (connected - 1).ToString(CultureInfo.InvariantCulture));
            var victim = (await PoolSocketsAsync(server, marker))[0];
            await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
            await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState != RedisPoolCircuitState.Closed), TimeSpan.FromSeconds(15), "the breaker opens on the refused reconnect");

            // One probe per break interval, standing in for the lost socket.
            var before = await RejectedAsync(server);
            var window = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(4));
            var rejected = await RejectedAsync(server) - before;
            Output.WriteLine($"rejected_connections over {window.Elapsed.TotalSeconds:F1} s with the breaker open: {rejected} (BreakDuration {BreakDuration.TotalSeconds:F0} s)");
            Assert.InRange(rejected, 1, (long)(window.Elapsed / BreakDuration) + 2);

            // Room for exactly the pool's MaxConnections: a probe beside the socket it stands in for would be refused.
            await server.ConfigSetAsync("maxclients", connected.ToString(CultureInfo.InvariantCulture));
            var baseline = await RejectedAsync(server);
            await Eventually.TrueAsync(
                async () => pool.CircuitState == RedisPoolCircuitState.Closed && (await PoolSocketsAsync(server, marker)).Count == maxConnections,
                TimeSpan.FromSeconds(15),
                "the probe closes the breaker and the lost socket reconnects");
            Assert.Equal(baseline, await RejectedAsync(server));
            Assert.True(await pool.GetDatabase().StringSetAsync("after", "recovery"));

            // Every half-open was a real probe in the lost socket's place, and the last one found room.
            lock (transitions)
            {
                Assert.DoesNotContain(transitions, t => t.Reason.Contains("not probed", StringComparison.Ordinal));
                Assert.Contains("probe succeeded", transitions[^1].Reason, StringComparison.Ordinal);
            }
        }
        finally
        {
            await sampling.CancelAsync();
            var (samples, most) = await sampler;
            Output.WriteLine($"{samples} CLIENT LIST samples; most sockets of the pool at once: {most} (MaxConnections {maxConnections})");
            lock (transitions)
            {
                foreach (var t in transitions)
                {
                    Output.WriteLine($"{t.PreviousState} -> {t.State}: {t.Reason}");
                }
            }

            foreach (var client in await server.ClientListAsync())
            {
                Output.WriteLine($"client {client.Id} '{client.Name}' {client.Address} flags={client.Flags} cmd={client.LastCommand}");
            }

            await server.ConfigSetAsync("maxclients", "10000");
            Assert.True(samples > 10, $"only {samples} samples");
            Assert.InRange(most, 1, maxConnections);
        }
    }

    [Fact]
    public async Task A_socket_lost_while_the_server_has_room_for_exactly_the_pool_reconnects_without_a_socket_beside_it()
    {
        var server = await StartServerAsync();
        var log = new Monitoring.CapturingLoggerProvider();
        using var loggers = new Production.CapturingLoggerFactory(log);
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "lostroom",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            MaxConnections = 1,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Breaker = { BreakDuration = BreakDuration, MaxBreakDuration = BreakDuration },
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        }, loggers);
        var transitions = new List<RedisPoolCircuitStateChangedEventArgs>();
        pool.CircuitStateChanged += (_, e) =>
        {
            lock (transitions)
            {
                transitions.Add(e);
            }
        };
        await pool.ConnectAsync();
        const string marker = ":lostroom:";
        await Eventually.TrueAsync(async () => (await PoolSocketsAsync(server, marker)).Count == 1, TimeSpan.FromSeconds(10), "the pool's multiplexer is connected");

        // Room for exactly the pool's one socket: the probe that classifies its loss and its reconnect cannot both get in.
        await server.ConfigSetAsync("maxclients", (await server.ClientListAsync()).Count.ToString(CultureInfo.InvariantCulture));
        var before = await RejectedAsync(server);
        using var sampling = new CancellationTokenSource();
        var sampler = SampleAsync(server, c => c.Name != RedisServer.AdminClientName, sampling.Token);
        try
        {
            for (var round = 0; round < 3; round++)
            {
                var victim = (await PoolSocketsAsync(server, marker))[0];
                await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
                await Eventually.TrueAsync(
                    async () => (await PoolSocketsAsync(server, marker)) is [var back] && back.Id != victim.Id,
                    TimeSpan.FromSeconds(15),
                    "the lost socket reconnects");
                Assert.True(await pool.GetDatabase().StringSetAsync("round", round), $"the pool serves after lost socket {round + 1}");
            }

            var rejected = await RejectedAsync(server) - before;
            Output.WriteLine($"rejected_connections over 3 lost sockets: {rejected}; breaker {pool.CircuitState}; {pool.GetStatistics().RejectedCircuitOpen} refused by it");
            Assert.Equal(0, rejected);
            Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);
            lock (transitions)
            {
                Assert.Empty(transitions);
            }
        }
        finally
        {
            await sampling.CancelAsync();
            var (samples, most) = await sampler;
            foreach (var line in log.Lines)
            {
                Output.WriteLine($"log {line.EventId.Id} {line.Level}: {line.Text}");
            }

            Output.WriteLine($"{samples} CLIENT LIST samples over 3 lost sockets; most sockets of the pool at once: {most} (MaxConnections 1); reconnects held back {pool.GetStatistics().ReconnectsSuppressed}");
            Assert.InRange(most, 1, 1);
        }
    }

    [Fact]
    public async Task With_every_slot_held_by_an_open_socket_no_probe_is_sent_and_the_next_refused_socket_reopens_for_the_doubled_break()
    {
        var server = await StartServerAsync();
        var transitions = new List<RedisPoolCircuitStateChangedEventArgs>();
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "fullshare",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            MaxConnections = 2,
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            Breaker = { BreakDuration = BreakDuration, MaxBreakDuration = TimeSpan.FromSeconds(8) },
            Leases = { MaxLeases = 1, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        pool.CircuitStateChanged += (_, e) =>
        {
            lock (transitions)
            {
                transitions.Add(e);
            }
        };
        await pool.ConnectAsync();

        // Full: the lease's socket is refused and the breaker opens; the multiplexer's socket keeps serving.
        await server.ConfigSetAsync("maxclients", (await server.InfoAsync("clients"))["connected_clients"]);
        await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync());
        await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState == RedisPoolCircuitState.Open), TimeSpan.FromSeconds(5), "the breaker opens");
        var opened = await RejectedAsync(server);

        // A fleet share of one socket: the multiplexer's open socket holds it, so the probe has no place.
        pool.Budget.SetLimit(1);
        await Eventually.TrueAsync(() => Task.FromResult(Last(transitions).State == RedisPoolCircuitState.Closed), TimeSpan.FromSeconds(5), "the breaker closes after its break");
        var closed = Last(transitions);
        Output.WriteLine($"closed: {closed.Reason}");
        Assert.Contains("not probed", closed.Reason, StringComparison.Ordinal);
        Assert.Equal(opened, await RejectedAsync(server));
        Assert.True(await pool.GetDatabase().StringSetAsync("still", "serving"));

        // The share grows back and one lease is asked for: one connect, refused, opens the breaker for the doubled break.
        pool.Budget.SetLimit(2);
        await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync());
        await Eventually.TrueAsync(() => Task.FromResult(pool.CircuitState == RedisPoolCircuitState.Open), TimeSpan.FromSeconds(5), "the refused lease reopens the breaker");
        var reopened = Last(transitions);
        var attempts = await RejectedAsync(server) - opened;
        Output.WriteLine($"reopened: {reopened.Reason}; rejected_connections for the one lease: {attempts}");
        Assert.InRange(reopened.RetryAfter!.Value, BreakDuration * 2, BreakDuration * 2 * 1.25);
        // One connect (StackExchange.Redis tries it twice with ConnectRetry 1) and the probe that classifies it.
        Assert.InRange(attempts, 1, 3);
        Assert.Single(await PoolSocketsAsync(server, ":fullshare:"));
    }

    private static RedisPoolCircuitStateChangedEventArgs Last(List<RedisPoolCircuitStateChangedEventArgs> transitions)
    {
        lock (transitions)
        {
            return transitions.Count == 0 ? new RedisPoolCircuitStateChangedEventArgs("none", RedisPoolCircuitState.Closed, RedisPoolCircuitState.Open, "none", null) : transitions[^1];
        }
    }

    private static async Task<List<RedisClientInfo>> PoolSocketsAsync(RedisServer server, string marker) =>
        [.. (await server.ClientListAsync()).Where(c => c.Name.Contains(marker, StringComparison.Ordinal))];

    /// <summary>Counts, until cancelled, the server's clients that are the pool's: its sockets, its probe included.</summary>
    private static async Task<(int Samples, int Most)> SampleAsync(RedisServer server, Func<RedisClientInfo, bool> isPools, CancellationToken cancellationToken)
    {
        var samples = 0;
        var most = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var clients = await server.ClientListAsync();
            most = Math.Max(most, clients.Count(isPools));
            samples++;
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
        }

        return (samples, most);
    }

    private static async Task<long> RejectedAsync(RedisServer server) =>
        long.Parse((await server.InfoAsync("stats"))["rejected_connections"], CultureInfo.InvariantCulture);
}
