using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Leases;

/// <summary>
/// A redis-server of its own, from the shared harness: it retries another free port when a test running beside it took
/// the one it picked (this fixture used to pick a port, close it and start redis-server on it; when another server
/// took the port first, the tests ran against that server and failed together when it stopped).
/// </summary>
public sealed class LeaseRedisServer : IAsyncLifetime
{
    private RedisServer? _server;

    public int Port => Server.Port;

    public ConnectionMultiplexer Admin => Server.Admin;

    private RedisServer Server => _server ?? throw new InvalidOperationException("The lease tests' redis-server has not started.");

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

[Collection(FaultCollection.Name)]
public sealed class LeasePoolIntegrationTests(LeaseRedisServer server, ITestOutputHelper output) : IClassFixture<LeaseRedisServer>
{
    private sealed record Setup(RedisPoolOptions Options, ConnectionBudget Budget, LeasePool Pool) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Pool.DisposeAsync();
    }

    private Setup Create(Action<RedisPoolOptions> configure)
    {
        var options = new RedisPoolOptions { Name = "leases", ServiceName = "itest", Configuration = $"127.0.0.1:{server.Port}" };
        configure(options);
        var configuration = RedisPoolOptionsValidator.ThrowIfInvalid(options);
        var budget = new ConnectionBudget(options.MaxConnections);
        var factory = new RedisConnectionFactory(options, configuration, budget, PoolParts.Breaker(options, NullLogger.Instance), TimeProvider.System, NullLogger.Instance);
        var admin = server.Admin.GetDatabase();
        var pool = new LeasePool(
            options.Leases,
            options.Name,
            (index, ct) => FactoryLeaseConnection.ConnectAsync(factory, options, TimeProvider.System, index, node: null, ct),
            async clientId => (long)await admin.ExecuteAsync("CLIENT", "UNBLOCK", clientId) == 1,
            budget.Describe,
            options.ShutdownGracePeriod,
            TimeProvider.System,
            NullLogger.Instance,
            new RedisPoolMetrics());
        return new Setup(options, budget, pool);
    }

    private async Task<int> BlockedClients()
    {
        var info = (string?)await server.Admin.GetDatabase().ExecuteAsync("INFO", "clients") ?? "";
        var line = info.Split('\n').First(l => l.StartsWith("blocked_clients:", StringComparison.Ordinal));
        return int.Parse(line["blocked_clients:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<int> LeaseSocketsOnServer()
    {
        var list = (string?)await server.Admin.GetDatabase().ExecuteAsync("CLIENT", "LIST") ?? "";
        return list.Split('\n').Count(l => l.Contains("name=itest:", StringComparison.Ordinal) && l.Contains(":leases:lease", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_hundred_consumers_share_sixteen_leases_and_consume_every_item_once()
    {
        await using var setup = Create(o => { o.MaxConnections = 16; o.Leases.MaxLeases = 16; o.Leases.AcquireTimeout = TimeSpan.FromSeconds(60); o.Leases.MaxWaiters = 1000; });
        const int Items = 2000;
        const int Consumers = 200;
        RedisKey queue = "queue:notifications:" + Guid.NewGuid().ToString("N");
        var consumed = new ConcurrentDictionary<string, int>();
        var done = new CancellationTokenSource();
        var maxBlocked = 0;
        var maxSockets = 0;
        var maxBudget = 0;

        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                maxBlocked = Math.Max(maxBlocked, await BlockedClients());
                maxSockets = Math.Max(maxSockets, await LeaseSocketsOnServer());
                maxBudget = Math.Max(maxBudget, setup.Budget.Used);
                await Task.Delay(10);
            }
        });

        var getLatencies = new ConcurrentBag<double>();
        var getter = Task.Run(async () =>
        {
            var db = server.Admin.GetDatabase();
            while (!done.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                await db.StringGetAsync("some-key");
                getLatencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                await Task.Delay(1);
            }
        });

        var consumers = Enumerable.Range(0, Consumers).Select(_ => Task.Run(async () =>
        {
            while (consumed.Count < Items)
            {
                await using var lease = await setup.Pool.AcquireAsync();
                var popped = await lease.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(0.5));
                if (popped is { } item)
                {
                    consumed.AddOrUpdate(item.Value!, 1, (_, n) => n + 1);
                }
            }
        })).ToArray();

        var producer = server.Admin.GetDatabase();
        for (var i = 0; i < Items; i++)
        {
            await producer.ListRightPushAsync(queue, "item-" + i);
            if (i % 100 == 0)
            {
                await Task.Delay(5);
            }
        }

        await Task.WhenAll(consumers).WaitAsync(TimeSpan.FromSeconds(120));
        await done.CancelAsync();
        await Task.WhenAll(sampler, getter);

        Assert.Equal(Items, consumed.Count);
        Assert.All(consumed.Values, n => Assert.Equal(1, n));
        Assert.InRange(maxBlocked, 1, 16);
        Assert.InRange(maxSockets, 1, 16);
        Assert.InRange(maxBudget, 1, setup.Budget.Max);
        var sorted = getLatencies.Order().ToArray();
        output.WriteLine($"blocked_clients max {maxBlocked}, lease sockets on server max {maxSockets}, budget max {maxBudget}; GET on the shared multiplexer: {sorted.Length} samples, p50 {sorted[sorted.Length / 2]:F2} ms, p99 {sorted[(int)(sorted.Length * 0.99)]:F2} ms");
    }

    [Fact]
    public async Task Lease_wait_times_out_at_AcquireTimeout_and_names_it()
    {
        var acquireTimeout = TimeSpan.FromMilliseconds(500);
        await using var setup = Create(o => { o.Leases.MaxLeases = 1; o.Leases.AcquireTimeout = acquireTimeout; });
        await using var held = await FirstLeaseAsync(setup.Pool);

        // The first timeout pays for JIT of the timeout path; the promise is about steady state.
        await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => setup.Pool.AcquireAsync().AsTask());
        var (elapsed, error) = await TimedOnCompletion(() => setup.Pool.AcquireAsync().AsTask());
        output.WriteLine($"LeaseTimeout after {elapsed.TotalMilliseconds:F0} ms: {error?.Message}");
        var ex = Assert.IsType<RedisPoolExhaustedException>(error);
        Assert.Equal(RedisPoolExhaustedReason.LeaseTimeout, ex.Reason);
        Assert.Contains("AcquireTimeout", ex.Message, StringComparison.Ordinal);

        // Never before AcquireTimeout; after it by about 100 ms on a quiet machine, but a starved 2-core machine may run
        // the timer that ends the wait seconds late, which the pool cannot prevent. The held lease is never returned:
        // without the timeout the wait would not end at all.
        Assert.InRange(elapsed, acquireTimeout - TimeSpan.FromMilliseconds(10), acquireTimeout + TimeSpan.FromSeconds(3));
    }

    /// <summary>Times a call until its task completes, on the thread that completes it, so a late test continuation is not counted.</summary>
    private static Task<(TimeSpan Elapsed, Exception? Error)> TimedOnCompletion(Func<Task> call)
    {
        var started = Stopwatch.GetTimestamp();
        return call().ContinueWith(
            t => (Stopwatch.GetElapsedTime(started), t.Exception?.InnerException),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>The first connect on a loaded machine may outlast a short AcquireTimeout; the socket it opens still lands in the pool.</summary>
    private static async Task<RedisLease> FirstLeaseAsync(LeasePool pool)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await pool.AcquireAsync();
            }
            catch (RedisPoolExhaustedException) when (deadline.Elapsed < TimeSpan.FromSeconds(20))
            {
            }
        }
    }

    [Fact]
    public async Task Cancel_during_BLPOP_keeps_the_socket_and_loses_no_later_item()
    {
        await using var setup = Create(o => o.Leases.MaxLeases = 1);
        RedisKey queue = "queue:cancel:" + Guid.NewGuid().ToString("N");
        long clientId;
        await using (var lease = await setup.Pool.AcquireAsync())
        {
            clientId = (long)await lease.Database.ExecuteAsync("CLIENT", "ID");
            Assert.Equal(clientId, lease.ClientId);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            var started = Stopwatch.StartNew();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lease.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(20), cts.Token));
            output.WriteLine($"BLPOP cancelled after {started.ElapsedMilliseconds} ms");
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(5));
        }

        Assert.Equal(1, setup.Pool.Idle);
        await server.Admin.GetDatabase().ListRightPushAsync(queue, "after-cancel");
        await using (var again = await setup.Pool.AcquireAsync())
        {
            Assert.Equal(clientId, (long)await again.Database.ExecuteAsync("CLIENT", "ID"));
            var popped = await again.BlockingLeftPopAsync([queue], TimeSpan.FromSeconds(2));
            Assert.Equal("after-cancel", (string?)popped?.Value);
        }

        Assert.Equal(0, await BlockedClients());
    }

    [Fact]
    public async Task Blocking_helpers_parse_RESP3_replies()
    {
        await using var setup = Create(o => o.Leases.MaxLeases = 2);
        var db = server.Admin.GetDatabase();
        var id = Guid.NewGuid().ToString("N");
        await using var lease = await setup.Pool.AcquireAsync();

        await db.ListRightPushAsync("l:" + id, ["a", "b"]);
        var right = await lease.BlockingRightPopAsync(["empty:" + id, "l:" + id], TimeSpan.FromSeconds(1));
        Assert.Equal("l:" + id, (string?)right!.Value.Key);
        Assert.Equal("b", (string?)right.Value.Value);
        Assert.Null(await lease.BlockingLeftPopAsync(["empty:" + id], TimeSpan.FromMilliseconds(100)));

        await db.ListRightPushAsync("m:" + id, "x");
        Assert.Equal("x", (string?)await lease.BlockingMoveAsync("m:" + id, "n:" + id, ListSide.Left, ListSide.Right, TimeSpan.FromSeconds(1)));
        Assert.True((await lease.BlockingMoveAsync("m:" + id, "n:" + id, ListSide.Left, ListSide.Right, TimeSpan.FromMilliseconds(50))).IsNull);

        await db.SortedSetAddAsync("z:" + id, [new SortedSetEntry("low", 1.5), new SortedSetEntry("high", 9)]);
        var min = await lease.BlockingSortedSetPopMinAsync(["z:" + id], TimeSpan.FromSeconds(1));
        Assert.Equal(("z:" + id, "low", 1.5), ((string)min!.Value.Key!, (string)min.Value.Entry.Element!, min.Value.Entry.Score));
        var max = await lease.BlockingSortedSetPopMaxAsync(["z:" + id], TimeSpan.FromSeconds(1));
        Assert.Equal("high", (string?)max!.Value.Entry.Element);

        var streamId = await db.StreamAddAsync("s:" + id, [new NameValueEntry("f", "v")]);
        var read = await lease.StreamReadBlockingAsync([new StreamPosition("s:" + id, "0")], 10, TimeSpan.FromSeconds(1));
        var stream = Assert.Single(read);
        Assert.Equal("s:" + id, (string?)stream.Key);
        Assert.Equal(streamId, Assert.Single(stream.Entries).Id);
        Assert.Equal("v", (string?)stream.Entries[0]["f"]);
        Assert.Empty(await lease.StreamReadBlockingAsync([new StreamPosition("s:" + id, "$")], null, TimeSpan.FromMilliseconds(50)));

        await db.StreamCreateConsumerGroupAsync("s:" + id, "g", "0");
        var group = await lease.StreamReadGroupBlockingAsync([new StreamPosition("s:" + id, ">")], "g", "c1", null, noAck: false, TimeSpan.FromSeconds(1));
        Assert.Equal(streamId, Assert.Single(Assert.Single(group).Entries).Id);

        Assert.Equal(0, await lease.WaitForReplicasAsync(0, TimeSpan.FromMilliseconds(50)));
    }
}
