using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Breaker;

[CollectionDefinition(nameof(BreakerServerCollection), DisableParallelization = true)]
public sealed class BreakerServerCollection;

[Collection(nameof(BreakerServerCollection))]
public sealed class MaxClientsProbeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(2);
    private readonly MaxClientsProbe _probe = new(TimeProvider.System);

    [Fact]
    public async Task A_server_filled_with_raw_sockets_is_classified_as_max_clients()
    {
        await using var server = await LocalRedis.StartAsync("--maxclients", "2");
        var holders = await FillAsync(server, 2);
        try
        {
            var greeting = await PollAsync(() => _probe.ReadGreetingAsync(server.EndPoint, s_timeout, CancellationToken.None), r => r.Outcome == ProbeOutcome.MaxClients);
            Assert.Equal(ProbeOutcome.MaxClients, greeting.Outcome);
            Assert.Equal("-ERR max number of clients reached", greeting.FirstLine);

            var ping = await _probe.PingAsync(server.EndPoint, s_timeout, CancellationToken.None);
            output.WriteLine($"PING on a full server: {ping}");
            Assert.Equal(ProbeOutcome.MaxClients, ping.Outcome);
        }
        finally
        {
            holders.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_server_with_free_slots_waits_silently_and_answers_PING()
    {
        await using var server = await LocalRedis.StartAsync();

        var started = Stopwatch.GetTimestamp();
        var greeting = await _probe.ReadGreetingAsync(server.EndPoint, s_timeout, CancellationToken.None);
        output.WriteLine($"greeting probe on a free server took {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        var ping = await _probe.PingAsync(server.EndPoint, s_timeout, CancellationToken.None);

        Assert.Equal(ProbeOutcome.Silent, greeting.Outcome);
        Assert.Equal(new ProbeResult(ProbeOutcome.Replied, "+PONG"), ping);
    }

    [Fact]
    public async Task A_password_protected_server_grants_the_PING_probe_a_slot()
    {
        await using var server = await LocalRedis.StartAsync("--requirepass", "s3cret");

        var ping = await _probe.PingAsync(server.EndPoint, s_timeout, CancellationToken.None);

        Assert.Equal(ProbeOutcome.Replied, ping.Outcome);
        Assert.StartsWith("-NOAUTH", ping.FirstLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_closed_port_is_refused()
    {
        var closed = new IPEndPoint(IPAddress.Loopback, LocalRedis.FreePort());

        var greeting = await _probe.ReadGreetingAsync(closed, s_timeout, CancellationToken.None);
        var ping = await _probe.PingAsync(closed, s_timeout, CancellationToken.None);

        Assert.Equal(ProbeOutcome.Refused, greeting.Outcome);
        Assert.Equal(ProbeOutcome.Refused, ping.Outcome);
    }

    [Fact]
    public async Task Breaker_trips_on_a_full_server_probes_once_per_break_and_closes_when_slots_free()
    {
        await using var server = await LocalRedis.StartAsync("--maxclients", "3");
        var config = ConfigurationOptions.Parse($"127.0.0.1:{server.Port.ToString(CultureInfo.InvariantCulture)},allowAdmin=true");
        config.Protocol = RedisProtocol.Resp3;
        config.SharedSubscriptionConnection = true;
        await using var admin = await ConnectionMultiplexer.ConnectAsync(config);
        var holders = await FillAsync(server, 2);
        var options = new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromMilliseconds(400), MaxBreakDuration = TimeSpan.FromMilliseconds(1600) };
        await using var breaker = new MaxClientsBreaker(
            "orders", options, [server.EndPoint], useTls: false, TimeSpan.FromSeconds(1), TimeProvider.System,
            NullLogger.Instance, metrics: null, ct => ReadRejectedAsync(admin, server.EndPoint));
        var events = new List<RedisPoolCircuitStateChangedEventArgs>();
        breaker.StateChanged += (_, e) =>
        {
            lock (events)
            {
                events.Add(e);
            }
        };
        try
        {
            await PollAsync(() => _probe.ReadGreetingAsync(server.EndPoint, s_timeout, CancellationToken.None), r => r.Outcome == ProbeOutcome.MaxClients);

            await breaker.OnSocketFailedAsync(new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "UnableToConnect", null, CommandStatus.Unknown), CancellationToken.None);

            Assert.Equal(RedisPoolCircuitState.Open, breaker.State);
            string reason;
            lock (events)
            {
                reason = events[^1].Reason;
            }

            output.WriteLine(reason);
            Assert.Contains("-ERR max number of clients reached", reason, StringComparison.Ordinal);
            Assert.Matches(@"rejected_connections (\d+) -> (\d+)", reason);
            Assert.True(await admin.GetDatabase().PingAsync() >= TimeSpan.Zero, "the existing socket keeps serving");

            var ex = Assert.Throws<RedisPoolCircuitOpenException>(() => breaker.ThrowIfOpen("127.0.0.1"));
            Assert.IsType<RedisConnectionException>(ex.InnerException);
            var rejectedBeforeChecks = await ReadRejectedAsync(admin, server.EndPoint);
            var samples = new double[1000];
            for (var i = 0; i < samples.Length; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    breaker.ThrowIfOpen("127.0.0.1");
                }
                catch (RedisPoolCircuitOpenException)
                {
                }

                samples[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }

            Array.Sort(samples);
            output.WriteLine($"ThrowIfOpen while open: median {samples[500]:F1} us, p99 {samples[990]:F1} us");

            // Rejecting while open touches no socket (its cost is measured in the benchmarks, not asserted here): 1000
            // checks against the full server added no rejected connection.
            Assert.Equal(rejectedBeforeChecks, await ReadRejectedAsync(admin, server.EndPoint));

            var rejectedBefore = await ReadRejectedAsync(admin, server.EndPoint);
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < TimeSpan.FromSeconds(3))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), TimeProvider.System);
            }

            // The first probe is due 400 ms after the trip; a starved machine may run its timer late, so wait for it.
            await Eventually.TrueAsync(() => HalfOpenCount(events) >= 1, TimeSpan.FromSeconds(15), "the breaker to probe while the server is full");
            var window = watch.Elapsed;
            var rejectedAfter = await ReadRejectedAsync(admin, server.EndPoint);
            var probes = HalfOpenCount(events);

            // Break intervals 400, 800, 1600, 1600... ms: at most 1 + window / 400 ms probes, and each probe at most one
            // rejected connection. A starved machine's late timers only mean fewer.
            output.WriteLine($"while full for {window.TotalSeconds:F1} s: {probes} half-open probes, rejected_connections +{rejectedAfter - rejectedBefore}");
            Assert.InRange(probes, 1, 1 + (int)(window / options.BreakDuration));
            Assert.True(rejectedAfter - rejectedBefore <= probes, $"rejected +{rejectedAfter - rejectedBefore} for {probes} probes");

            var probesBeforeFree = HalfOpenCount(events);
            holders.ForEach(s => s.Dispose());
            var freed = Stopwatch.StartNew();
            await Eventually.TrueAsync(() => breaker.State == RedisPoolCircuitState.Closed, TimeSpan.FromSeconds(15), "the breaker to close once slots are free");

            // A probe closes it as soon as one runs against the freed slots, however late a starved machine runs it: the
            // probe under way when they were freed, else the next one (else, if the server had not yet seen the slots
            // go, the one after). A breaker that kept failing its probes would open again instead.
            var probesToClose = HalfOpenCount(events) - probesBeforeFree;
            output.WriteLine($"closed {freed.ElapsedMilliseconds} ms after the slots were freed (MaxBreakDuration 1.6 s), {probesToClose} probes later");
            Assert.Equal(RedisPoolCircuitState.Closed, breaker.State);
            Assert.InRange(probesToClose, 0, 2);
        }
        finally
        {
            holders.ForEach(s => s.Dispose());
        }
    }

    private static int HalfOpenCount(List<RedisPoolCircuitStateChangedEventArgs> events)
    {
        lock (events)
        {
            return events.Count(e => e.State == RedisPoolCircuitState.HalfOpen);
        }
    }

    private static async Task<long?> ReadRejectedAsync(ConnectionMultiplexer admin, EndPoint endPoint)
    {
        var info = await admin.GetServer(endPoint).InfoAsync("stats");
        var value = info.SelectMany(g => g).First(kv => kv.Key == "rejected_connections").Value;
        return long.Parse(value, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Holds <paramref name="slots"/> slots with raw sockets until the server is full of them. The event loop accepts
    /// them shortly after their TCP handshake, and on a loaded machine it may still count a connection it has not yet
    /// seen close (the start-up check's, an earlier probe's): a holder accepted then is refused, and the server is not
    /// full once that close is seen. A refused holder has the error to read; it is replaced until none is.
    /// </summary>
    private async Task<List<Socket>> FillAsync(LocalRedis server, int slots)
    {
        var holders = await server.HoldSlotsAsync(slots);
        await Eventually.TrueAsync(
            async () =>
            {
                foreach (var refused in holders.Where(s => s.Poll(0, SelectMode.SelectRead)).ToList())
                {
                    refused.Dispose();
                    holders.Remove(refused);
                    holders.AddRange(await server.HoldSlotsAsync(1));
                }

                // The probe is accepted after every holder (in order), so a holder refused before it has its error by now.
                var greeting = await _probe.ReadGreetingAsync(server.EndPoint, s_timeout, CancellationToken.None);
                return greeting.Outcome == ProbeOutcome.MaxClients && !holders.Any(s => s.Poll(0, SelectMode.SelectRead));
            },
            TimeSpan.FromSeconds(30),
            $"the server to be full of {slots} holders");
        return holders;
    }

    private static async Task<ProbeResult> PollAsync(Func<Task<ProbeResult>> probe, Func<ProbeResult, bool> done)
    {
        var last = default(ProbeResult);
        await Eventually.TrueAsync(
            async () =>
            {
                last = await probe();
                return done(last);
            },
            TimeSpan.FromSeconds(5),
            "the probe to see the expected outcome");
        return last;
    }
}
