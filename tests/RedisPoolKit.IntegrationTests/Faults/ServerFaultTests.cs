using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;
using static RedisPoolKit.IntegrationTests.Faults.FaultGuarantees;

namespace RedisPoolKit.IntegrationTests.Faults;

/// <summary>
/// The server misbehaves (crash, full, paused, asleep, loading, busy, out of memory, reaping, killing clients):
/// each test asserts the guarantees that apply: a typed error within its bound, recovery, no socket over budget,
/// no slot or permit lost, nothing sent twice. docs/Reliability.md lists them with their measured figures.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ServerFaultTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task Kill_9_and_restart_under_load_fails_typed_and_serves_again_within_the_break_bound()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("kill9", server.ConnectionString));
        await pool.ConnectAsync();
        await using var load = new IncrementLoad(pool.GetDatabase(), "kill9:counter", workers: 8);
        await Eventually.TrueAsync(() => load.Successes > 100, SettleDeadline, "the load to run");

        await server.KillAsync();
        await Eventually.TrueAsync(() => !load.Errors.IsEmpty, SettleDeadline, "the load to see the crash");
        await server.RestartAsync();
        var restarted = Stopwatch.StartNew();
        var before = load.Successes;
        await Eventually.TrueAsync(() => load.Successes > before, SettleDeadline, "the load to be served by the restarted server");
        var recovery = restarted.Elapsed;
        await load.StopAsync();

        Output.WriteLine($"served again {recovery.TotalMilliseconds:F0} ms after the restart; {load.Summary()}");
        Assert.All(load.Errors, e => Assert.True(e is RedisConnectionException or RedisTimeoutException or RedisPoolException, e.ToString()));

        Assert.True(recovery < RecoveryBound, $"recovery took {recovery.TotalMilliseconds:F0} ms");
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Maxclients_drop_plus_CLIENT_KILL_opens_the_breaker_without_leaks_and_recovers()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("full", server.ConnectionString, FailFastCommandTimeout));
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        // Full after the kill: a limit at the current count would hand the killed sockets' slots straight back to their reconnects.
        var victims = (await server.ClientListAsync()).Where(c => c.Name.Contains(":full:", StringComparison.Ordinal)).ToList();
        var connected = int.Parse((await server.InfoAsync("clients"))["connected_clients"], CultureInfo.InvariantCulture);
        await server.ConfigSetAsync("maxclients", (connected - victims.Count).ToString(CultureInfo.InvariantCulture));
        foreach (var victim in victims)
        {
            await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
        }

        await Eventually.TrueAsync(() => pool.CircuitState != RedisPoolCircuitState.Closed, SettleDeadline, "the breaker to open on the full server");
        var (elapsed, error) = await Timed(() => db.StringGetAsync("full:k"));
        Output.WriteLine($"a command with no socket and the breaker open failed after {elapsed.TotalMilliseconds:F1} ms: {error?.GetType().Name}: {error?.Message}");
        Assert.True(error is RedisConnectionException or RedisPoolCircuitOpenException, $"{error}");
        Assert.True(elapsed < FailFastCommandTimeout, $"failing with no socket took {elapsed.TotalMilliseconds:F0} ms, as long as a command timeout");
        var lease = await Timed(async () => await pool.LeaseAsync());
        Assert.IsType<RedisPoolCircuitOpenException>(lease.Error);

        await server.ConfigSetAsync("maxclients", "1000");
        var recovery = await ServesAgainAsync(pool, "full:after");
        Output.WriteLine($"served again {recovery.TotalMilliseconds:F0} ms after maxclients was raised");
        Assert.True(recovery < RecoveryBound, $"recovery took {recovery.TotalMilliseconds:F0} ms");
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task CLIENT_PAUSE_ALL_times_commands_out_at_the_command_timeout_and_each_runs_once()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("pause", server.ConnectionString));
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "PAUSE", "2500", "ALL");
        var calls = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Timed(() => db.StringIncrementAsync("pause:counter"))));

        foreach (var (elapsed, error) in calls)
        {
            Output.WriteLine($"INCR during the pause: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F0} ms");
            Assert.IsType<RedisTimeoutException>(error);
            Assert.InRange(elapsed, CommandTimeout - TimeSpan.FromMilliseconds(50), CommandTimeoutBound);
        }

        // The held INCRs run when the pause ends, each exactly once: timed out is not resent.
        await server.Admin.GetDatabase().PingAsync();
        await ServesAgainAsync(pool, "pause:after");
        Assert.Equal(4, (long)await server.Admin.GetDatabase().StringGetAsync("pause:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task DEBUG_SLEEP_times_the_commands_behind_it_out_and_the_pool_serves_after()
    {
        var server = await StartServerAsync(DebugEnabled());
        await using var pool = new RedisPool(Options("sleep", server.ConnectionString));
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        // Sent on the pool's own socket, so the INCR is queued behind the sleep on the wire: no guessing when it began.
        // The sleep outlasts CommandTimeoutBound, so a heartbeat that fires late on a starved machine still finds the
        // INCR unanswered (with a 2 s sleep the reply came first once, at 2005 ms).
        var sleepSeconds = (int)CommandTimeoutBound.TotalSeconds + 1;
        var sleep = Timed(() => db.ExecuteAsync("DEBUG", "SLEEP", sleepSeconds));
        var incr = await Timed(() => db.StringIncrementAsync("sleep:counter"));
        var slept = await sleep;

        Output.WriteLine($"DEBUG SLEEP {sleepSeconds}: {slept.Error?.GetType().Name} after {slept.Elapsed.TotalMilliseconds:F0} ms; INCR behind it: {incr.Error?.GetType().Name} after {incr.Elapsed.TotalMilliseconds:F0} ms");
        Assert.IsType<RedisTimeoutException>(slept.Error);
        Assert.IsType<RedisTimeoutException>(incr.Error);
        Assert.InRange(incr.Elapsed, CommandTimeout - TimeSpan.FromMilliseconds(50), CommandTimeoutBound);

        await ServesAgainAsync(pool, "sleep:after");
        Assert.Equal(1, (long)await server.Admin.GetDatabase().StringGetAsync("sleep:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task LOADING_fails_typed_at_once_and_the_pool_serves_when_the_dataset_is_loaded()
    {
        var server = await StartServerAsync(DebugEnabled());
        var admin = server.Admin.GetServer(server.EndPoint);
        await admin.ExecuteAsync("DEBUG", "POPULATE", "10000", "loading");
        await server.ConfigSetAsync("key-load-delay", "100");
        await server.ConfigSetAsync("loading-process-events-interval-bytes", "1024");

        // DEBUG RELOAD saves and loads the dataset again: the server answers -LOADING meanwhile, as while it starts.
        var reload = admin.ExecuteAsync("DEBUG", "RELOAD");
        await Eventually.TrueAsync(async () => await RawReplyAsync(server, "PING") is var reply && reply.StartsWith("-LOADING", StringComparison.Ordinal), SettleDeadline, "the server to load");

        await using var pool = new RedisPool(Options("loading", server.ConnectionString, FailFastCommandTimeout));
        var (connectElapsed, connectError) = await Timed(() => pool.ConnectAsync());
        Output.WriteLine($"connect while loading: {connectError?.GetType().Name ?? "ok"} after {connectElapsed.TotalMilliseconds:F0} ms: {connectError?.Message}");
        var (elapsed, error) = await Timed(() => pool.GetDatabase().StringIncrementAsync("loading:counter"));
        Output.WriteLine($"INCR while loading: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F0} ms: {error?.Message}");
        Assert.True(error is RedisServerException { Message: var m } && m.StartsWith("LOADING", StringComparison.Ordinal) || error is RedisConnectionException or RedisPoolException, $"{error}");
        Assert.True(elapsed < FailFastCommandTimeout, $"INCR while loading took {elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);

        await Eventually.TrueAsync(async () => (await RawReplyAsync(server, "PING")).StartsWith("+PONG", StringComparison.Ordinal), SettleDeadline, "the load to end");
        var loaded = Stopwatch.StartNew();
        var recovery = await ServesAgainAsync(pool, "loading:after");
        Output.WriteLine($"served {recovery.TotalMilliseconds:F0} ms after the load ended (seen {loaded.Elapsed.TotalMilliseconds:F0} ms ago)");

        // The admin connection's own timeout may end DEBUG RELOAD's wait on a slow machine; the reload itself has finished.
        await Record.ExceptionAsync(() => reload);
        Assert.Equal(RedisValue.Null, await server.Admin.GetDatabase().StringGetAsync("loading:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task BUSY_script_fails_commands_typed_at_once_and_SCRIPT_KILL_brings_service_back()
    {
        var server = await StartServerAsync();
        await server.ConfigSetAsync("busy-reply-threshold", "100");
        await using var pool = new RedisPool(Options("busy", server.ConnectionString, FailFastCommandTimeout));
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        var script = server.Admin.GetDatabase().ScriptEvaluateAsync("while true do end", flags: CommandFlags.None);
        await Eventually.TrueAsync(async () => (await Timed(() => db.StringGetAsync("busy:k"))).Error is RedisServerException e && e.Message.StartsWith("BUSY", StringComparison.Ordinal), SettleDeadline, "the script to make the server BUSY");

        var (elapsed, error) = await Timed(() => db.StringIncrementAsync("busy:counter"));
        Output.WriteLine($"INCR while BUSY: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F1} ms: {error?.Message}");
        Assert.StartsWith("BUSY", Assert.IsType<RedisServerException>(error).Message, StringComparison.Ordinal);
        Assert.True(elapsed < FailFastCommandTimeout, $"a BUSY reply took {elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);

        Assert.StartsWith("+OK", await RawReplyAsync(server, "SCRIPT KILL"), StringComparison.Ordinal);
        await Assert.ThrowsAsync<RedisServerException>(() => script);
        var recovery = await ServesAgainAsync(pool, "busy:after");
        Output.WriteLine($"served {recovery.TotalMilliseconds:F0} ms after SCRIPT KILL");
        Assert.Equal(RedisValue.Null, await server.Admin.GetDatabase().StringGetAsync("busy:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task OOM_with_noeviction_rejects_writes_typed_at_once_while_reads_go_on()
    {
        var server = await StartServerAsync(new RedisServerOptions { Arguments = { "--maxmemory-policy", "noeviction" } });
        await using var pool = new RedisPool(Options("oom", server.ConnectionString, FailFastCommandTimeout));
        await pool.ConnectAsync();
        var db = pool.GetDatabase();
        Assert.True(await db.StringSetAsync("oom:read", "kept"));

        await server.ConfigSetAsync("maxmemory", "1");
        var (elapsed, error) = await Timed(() => db.StringIncrementAsync("oom:counter"));
        Output.WriteLine($"INCR over maxmemory: {error?.GetType().Name} after {elapsed.TotalMilliseconds:F1} ms: {error?.Message}");
        Assert.StartsWith("OOM", Assert.IsType<RedisServerException>(error).Message, StringComparison.Ordinal);
        Assert.True(elapsed < FailFastCommandTimeout, $"an OOM reply took {elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);
        Assert.Equal("kept", await db.StringGetAsync("oom:read"));

        await server.ConfigSetAsync("maxmemory", "0");
        Assert.Equal(1, await db.StringIncrementAsync("oom:counter"));
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task An_idle_lease_socket_closed_by_the_server_is_hidden_from_the_next_LeaseAsync_caller()
    {
        var server = await StartServerAsync();
        var options = Options("reaped", server.ConnectionString);
        options.Leases.ValidateAfterIdle = TimeSpan.FromMilliseconds(200);
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        long leaseClientId;
        await using (var first = await pool.LeaseAsync())
        {
            leaseClientId = (long)await first.Database.ExecuteAsync("CLIENT", "ID");
        }

        var released = Stopwatch.StartNew();
        await server.ConfigSetAsync("timeout", "1");
        var idle = (await server.ClientListAsync()).Single(c => c.Id == leaseClientId);
        Output.WriteLine($"idle lease socket: flags={idle.Flags}, sub={idle.Fields["sub"]}, psub={idle.Fields["psub"]}");

        // The pool's sockets subscribe to nothing, so the server's idle reaper applies to them as to any client: it
        // closes the idle lease socket with no reply and no warning, and the lease pool must notice before handing it out.
        Assert.Equal("0", idle.Fields["sub"]);
        await Eventually.TrueAsync(
            async () => !(await server.ClientListAsync()).Any(c => c.Id == leaseClientId),
            TimeSpan.FromSeconds(10),
            "the server's 'timeout 1' reaps the idle lease socket");

        // Validation applies to a lease idle longer than ValidateAfterIdle: the wait is the option's own clock.
        var rest = options.Leases.ValidateAfterIdle * 2 - released.Elapsed;
        if (rest > TimeSpan.Zero)
        {
            await Task.Delay(rest);
        }

        var watch = Stopwatch.StartNew();
        await using (var next = await pool.LeaseAsync())
        {
            Assert.True(await next.Database.StringSetAsync("reaped:k", "served"));
            Output.WriteLine($"the next lease served in {watch.Elapsed.TotalMilliseconds:F0} ms on socket {await next.Database.ExecuteAsync("CLIENT", "ID")} (closed: {leaseClientId})");
        }

        Assert.Equal(0, pool.GetStatistics().RejectedLeaseTimeout);
        await server.ConfigSetAsync("timeout", "0");
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task A_storm_of_CLIENT_KILL_on_the_pools_sockets_never_exceeds_the_budget_and_loses_no_slot()
    {
        var server = await StartServerAsync();
        var options = Options("killstorm", server.ConnectionString);
        options.MinMultiplexers = 2;
        options.Leases.MaxLeases = 2;
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        await using var load = new IncrementLoad(pool.GetDatabase(), "killstorm:counter", workers: 6);
        var leaseErrors = new ConcurrentQueue<Exception>();
        using var stopLeases = new CancellationTokenSource();
        var leaseUsers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!stopLeases.IsCancellationRequested)
            {
                try
                {
                    await using var lease = await pool.LeaseAsync();
                    await lease.Database.StringIncrementAsync("killstorm:leased");
                }
                catch (Exception ex)
                {
                    leaseErrors.Enqueue(ex);
                    await Task.Delay(5);
                }
            }
        })).ToArray();

        var maxOnServer = 0;
        var kills = 0;
        for (var round = 0; round < 20; round++)
        {
            var ours = (await server.ClientListAsync()).Where(c => c.Name.Contains(":killstorm:", StringComparison.Ordinal)).ToList();
            maxOnServer = Math.Max(maxOnServer, ours.Count);
            foreach (var victim in ours)
            {
                await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
                kills++;
            }

            // Storm pacing: ten rounds a second for two seconds.
            await Task.Delay(100);
        }

        await load.StopAsync();
        await stopLeases.CancelAsync();
        await Task.WhenAll(leaseUsers);
        Output.WriteLine($"{kills} sockets killed in 20 rounds; at most {maxOnServer} of the pool's sockets on the server; {load.Summary()}; lease errors: {string.Join(", ", leaseErrors.GroupBy(e => e.GetType().Name).Select(g => $"{g.Key} x{g.Count()}"))}");
        Assert.InRange(maxOnServer, 0, options.MaxConnections);
        Assert.All(load.Errors.Concat(leaseErrors), e => Assert.True(e is RedisConnectionException or RedisTimeoutException or RedisPoolException, e.ToString()));

        await ServesAgainAsync(pool, "killstorm:after");
        await AssertSettledAsync(pool, server, Output);
    }

    private static RedisServerOptions DebugEnabled() => new() { Arguments = { "--enable-debug-command", "local" } };

    /// <summary>Sends one inline command on a fresh plain socket and returns the first reply line.</summary>
    private static async Task<string> RawReplyAsync(RedisServer server, string command)
    {
        using var client = await server.ConnectRawAsync();
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        var buffer = new byte[512];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        return Encoding.ASCII.GetString(buffer, 0, read);
    }
}
