using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;
using static RedisPoolKit.IntegrationTests.Faults.FaultGuarantees;

namespace RedisPoolKit.IntegrationTests.Faults;

/// <summary>
/// Faults on the wire, injected by the <see cref="FaultProxy"/> between the pool and a healthy server: each test
/// asserts a typed error within its bound (or service, where the fault only slows), recovery once the wire heals,
/// no socket over budget, no slot or permit lost, and nothing sent twice.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class WireFaultTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task Blackhole_times_live_commands_out_fails_new_sockets_within_ConnectTimeout_and_healing_runs_each_once()
    {
        var (server, proxy, created) = await StartAsync("blackhole");
        await using var pool = created;
        var db = pool.GetDatabase();

        // A partition: nothing crosses the live socket and TCP keeps the bytes (Pause, not Blackhole, which would drop
        // bytes from the middle of a stream, something TCP never does); new connections get no answer at all.
        proxy.SetFault(ProxyFault.Pause);
        proxy.SetFault(ProxyFault.Blackhole, FaultScope.NewConnections);
        var calls = Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Timed(() => db.StringIncrementAsync("blackhole:counter"))));
        var (leaseElapsed, leaseError) = await Timed(async () => await pool.LeaseAsync());
        foreach (var (elapsed, error) in await calls)
        {
            Output.WriteLine($"INCR into the partition: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F0} ms");
            Assert.IsType<RedisTimeoutException>(error);
            Assert.InRange(elapsed, CommandTimeout - TimeSpan.FromMilliseconds(50), CommandTimeoutBound);
        }

        Output.WriteLine($"a lease needing a new socket: {leaseError?.GetType().Name} after {leaseElapsed.TotalMilliseconds:F0} ms: {leaseError?.Message}");
        Assert.IsType<RedisPoolException>(leaseError);

        // ConnectTimeout 1 s + the pool's 250 ms slack, and 3 s for a starved 2-core machine: still short of the 5 s
        // StackExchange.Redis would wait on its own; the message says which bound ended the wait.
        Assert.Contains("ConnectTimeout", leaseError!.Message, StringComparison.Ordinal);
        Assert.True(leaseElapsed < TimeSpan.FromSeconds(1 + 0.25 + 3), $"{leaseElapsed.TotalMilliseconds:F0} ms");

        proxy.Heal();
        var recovery = await ServesAgainAsync(pool, "blackhole:after");
        Output.WriteLine($"served {recovery.TotalMilliseconds:F0} ms after the wire healed");

        // The held INCRs reach the server once the partition heals, each once: timed out is not resent.
        Assert.Equal(4, (long)await server.Admin.GetDatabase().StringGetAsync("blackhole:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Reset_mid_reply_fails_the_commands_on_that_socket_typed_and_sends_none_again()
    {
        var (server, proxy, created) = await StartAsync("reset", FailFastCommandTimeout);
        await using var pool = created;
        var db = pool.GetDatabase();
        await server.Admin.GetDatabase().StringSetAsync("reset:big", new string('x', 2 * 1024 * 1024));

        // Slow the wire so the reset lands while the 2 MB reply is still arriving; the INCR is pipelined behind it.
        proxy.SetBandwidth(512 * 1024);
        var baseline = proxy.BytesToClient;
        var get = Timed(() => db.StringGetAsync("reset:big"));
        var incr = Timed(() => db.StringIncrementAsync("reset:counter"));
        await Eventually.TrueAsync(() => proxy.BytesToClient - baseline > 64 * 1024, SettleDeadline, "part of the reply to arrive");
        var resetAt = Stopwatch.StartNew();
        proxy.ResetConnections();
        var (getElapsed, getError) = await get;
        var (_, incrError) = await incr;
        var afterReset = resetAt.Elapsed;
        proxy.Heal();

        Output.WriteLine($"GET cut by a reset after {getElapsed.TotalMilliseconds:F0} ms ({afterReset.TotalMilliseconds:F1} ms after the RST): {getError?.GetType().Name}; INCR behind it: {incrError?.GetType().Name}");
        Assert.IsType<RedisConnectionException>(getError);
        Assert.IsType<RedisConnectionException>(incrError);
        Assert.True(afterReset < FailFastCommandTimeout, $"a reset took {afterReset.TotalMilliseconds:F0} ms to surface, as long as a timeout");

        await ServesAgainAsync(pool, "reset:after");

        // The server may have run the INCR before the reset; it must not have run it twice.
        var counter = (long?)await server.Admin.GetDatabase().StringGetAsync("reset:counter") ?? 0;
        Output.WriteLine($"reset:counter = {counter} for one INCR whose caller saw a failure");
        Assert.InRange(counter, 0, 1);
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Latency_of_200_ms_slows_every_command_but_fails_none_and_opens_no_extra_socket()
    {
        var (server, proxy, created) = await StartAsync("latency");
        await using var pool = created;
        var db = pool.GetDatabase();
        var socketsBefore = pool.GetStatistics().Sockets;
        var acceptedBefore = proxy.Accepted;
        proxy.Latency = TimeSpan.FromMilliseconds(200);

        var calls = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Timed(() => db.StringIncrementAsync("latency:counter"))));

        var elapsed = calls.Select(c => c.Elapsed.TotalMilliseconds).Order().ToArray();
        Output.WriteLine($"40 INCR at 200 ms each way: median {elapsed[20]:F0} ms, max {elapsed[^1]:F0} ms; {pool.GetStatistics().Sockets} sockets (before: {socketsBefore}); {proxy.Accepted - acceptedBefore} connections opened through the proxy meanwhile");
        Assert.All(calls, c => Assert.Null(c.Error));

        // Slow is not broken: the pool opened no socket for it (one opened and closed again would show in Accepted).
        Assert.Equal(acceptedBefore, proxy.Accepted);
        Assert.Equal(socketsBefore, pool.GetStatistics().Sockets);
        Assert.All(calls, c => Assert.True(c.Elapsed >= TimeSpan.FromMilliseconds(390), $"{c.Elapsed.TotalMilliseconds:F0} ms: the proxy did not delay"));
        Assert.Equal(40, (long)await server.Admin.GetDatabase().StringGetAsync("latency:counter"));
        proxy.Heal();
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Truncated_reply_fails_typed_at_once_and_the_pool_reconnects()
    {
        var (server, proxy, created) = await StartAsync("truncated", FailFastCommandTimeout);
        await using var pool = created;
        var db = pool.GetDatabase();
        await server.Admin.GetDatabase().StringSetAsync("truncated:big", new string('x', 100 * 1024));

        // 1000 more bytes to each client, then FIN: the 100 KB reply stops in the middle.
        proxy.CloseAfter(1000);
        var (elapsed, error) = await Timed(() => db.StringGetAsync("truncated:big"));
        Output.WriteLine($"GET with its reply truncated: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F1} ms: {error?.Message}");
        Assert.IsType<RedisConnectionException>(error);
        Assert.True(elapsed < FailFastCommandTimeout, $"a truncated reply took {elapsed.TotalMilliseconds:F0} ms to surface, as long as a timeout");

        proxy.Heal();
        var recovery = await ServesAgainAsync(pool, "truncated:after");
        Output.WriteLine($"served {recovery.TotalMilliseconds:F0} ms after the wire healed");
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Throttled_bandwidth_times_a_large_reply_out_at_the_command_timeout_and_keeps_the_socket_in_step()
    {
        var (server, proxy, created) = await StartAsync("throttled");
        await using var pool = created;
        var db = pool.GetDatabase();
        await server.Admin.GetDatabase().StringSetAsync("throttled:big", new string('x', 256 * 1024));

        // 64 KB/s: the 256 KB reply needs about 4 s, four command timeouts.
        proxy.SetBandwidth(64 * 1024);
        var (elapsed, error) = await Timed(() => db.StringGetAsync("throttled:big"));
        Output.WriteLine($"GET of 256 KB at 64 KB/s: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F0} ms; {proxy}");
        Assert.IsType<RedisTimeoutException>(error);
        Assert.InRange(elapsed, CommandTimeout - TimeSpan.FromMilliseconds(50), CommandTimeoutBound);

        // Once the wire is fast again the rest of that reply is read and dropped; later replies match their commands.
        proxy.SetBandwidth(0);
        await ServesAgainAsync(pool, "throttled:after");
        Assert.Equal("x", ((string?)await db.StringGetRangeAsync("throttled:big", 0, 0)) ?? string.Empty);
        await AssertSettledAsync(pool, server, Output);
    }

    private async Task<(RedisServer Server, FaultProxy Proxy, RedisPool Pool)> StartAsync(string name, TimeSpan? commandTimeout = null)
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        var pool = new RedisPool(Options(name, proxy.ConnectionString, commandTimeout));
        await pool.ConnectAsync();
        return (server, proxy, pool);
    }
}
