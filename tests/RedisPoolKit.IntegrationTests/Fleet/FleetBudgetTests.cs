using System.Collections.Concurrent;
using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Fleet;

/// <summary>
/// Ten pools of one service in one process, each its own instance, share Fleet.MaxConnections = 40 on a server with
/// maxclients 64, counted by the server's CLIENT LIST while every pool is under lease and command load.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class FleetBudgetTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private const string Service = "fleet-svc";
    private const int FleetMax = 40;
    private static readonly TimeSpan s_heartbeat = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(2);

    // Settling takes one heartbeat plus the return of leases held at that moment (each held ~50 ms); the rest is
    // margin for a loaded 2-core machine.
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Instances_going_2_to_10_to_3_hold_to_their_shares_of_40_and_grow_back()
    {
        var server = await StartServerAsync(MaxClients64());
        var instances = new List<Instance>();
        var everyone = new List<Instance>();
        var sampler = new SocketSampler(server);
        try
        {
            sampler.Start();

            // 2 instances: each share is 20, capped at the instance's own MaxConnections (16).
            for (var i = 0; i < 2; i++)
            {
                instances.Add(await Instance.StartAsync(server, i));
                everyone.Add(instances[^1]);
            }

            var settled = await SettleAsync(sampler, instances, expectedInstances: 2, expectedLimit: _ => 16);
            Output.WriteLine($"2 instances settled in {settled.TotalMilliseconds:F0} ms");
            await Eventually.TrueAsync(() => instances.Sum(i => i.Pool.GetStatistics().Sockets) > 10, s_settle, "two instances under load use more than ten sockets between them");
            var peakAtTwo = await sampler.PeakOverAsync(TimeSpan.FromSeconds(2));
            Output.WriteLine($"2 instances: peak {peakAtTwo} sockets on the server");
            Assert.InRange(peakAtTwo, 1, 32);

            // 10 instances: each share is 4. Until every instance has seen the newcomers the sum may pass 40 (they join
            // at what they need to work, and grow only after a heartbeat interval): never the server's maxclients.
            sampler.BeginWindow();
            for (var i = 2; i < 10; i++)
            {
                instances.Add(await Instance.StartAsync(server, i));
                everyone.Add(instances[^1]);
            }

            settled = await SettleAsync(sampler, instances, expectedInstances: 10, expectedLimit: _ => 4);
            var transition = sampler.EndWindow();
            Output.WriteLine($"10 instances settled in {settled.TotalMilliseconds:F0} ms (peak while settling: {transition} sockets)");
            Assert.InRange(transition, 1, 63);
            var peakAtTen = await sampler.PeakOverAsync(TimeSpan.FromSeconds(3));
            Output.WriteLine($"10 instances: peak {peakAtTen} sockets on the server after settling");
            Assert.InRange(peakAtTen, 10, FleetMax);

            // 3 instances: shares 14, 13, 13 (the remainder goes to the first ids).
            foreach (var leaving in instances.Skip(3).ToList())
            {
                await leaving.DisposeAsync();
                instances.Remove(leaving);
            }

            settled = await SettleAsync(sampler, instances, expectedInstances: 3, expectedLimit: rank => rank == 0 ? 14 : 13);
            Output.WriteLine($"3 instances settled in {settled.TotalMilliseconds:F0} ms");

            // Budgets grow back: the lease workers that waited at a share of 4 get sockets of their own again.
            await Eventually.TrueAsync(() => instances.All(i => i.Pool.GetStatistics().Sockets > 4), s_settle, "every remaining instance grows past its old share of 4 sockets");
            var peakAtThree = await sampler.PeakOverAsync(TimeSpan.FromSeconds(2));
            Output.WriteLine($"3 instances: peak {peakAtThree} sockets on the server");
            Assert.InRange(peakAtThree, 13, FleetMax);

            var failures = everyone.SelectMany(i => i.Failures).ToList();
            var exhausted = everyone.Sum(i => i.Exhausted);
            Output.WriteLine($"work done: {instances.Sum(i => i.Done)} operations; refused by admission rules: {exhausted} ({string.Join(", ", everyone.SelectMany(i => i.Refusals).GroupBy(r => r.Key).Select(g => $"{g.Key} {g.Sum(r => r.Value)}"))}); share changes: {string.Join(",", instances.Select(i => i.Pool.GetStatistics().FleetShareChanges))}");
            Assert.True(failures.Count == 0, "Callers failed other than by the admission rules: " + string.Join(Environment.NewLine, failures.Take(5)));
            Assert.All(instances, i => Assert.True(i.Done > 0));
        }
        finally
        {
            foreach (var instance in instances)
            {
                await instance.DisposeAsync();
            }

            await sampler.DisposeAsync();
        }

        // Every pool disposed removed its registration.
        Assert.Equal(0, await server.Admin.GetDatabase().SortedSetLengthAsync(RedisFleetRegistry.KeyFor(Service, "orders")));
    }

    [Fact]
    public async Task An_instance_that_stops_without_disposing_stops_counting_after_its_ttl()
    {
        var server = await StartServerAsync(MaxClients64());
        await using var a = await Instance.StartAsync(server, 0, load: false);
        await using var b = await Instance.StartAsync(server, 1, load: false);
        await using var killed = await Instance.StartAsync(server, 2, load: false);
        await Eventually.TrueAsync(() => a.Pool.GetStatistics().FleetInstances == 3 && b.Pool.GetStatistics().FleetInstances == 3, s_settle, "three instances see each other");
        await Eventually.TrueAsync(() => a.Pool.GetStatistics().EffectiveMaxConnections == 14, s_settle, "the first instance by id holds 14 of 40");

        // What a killed process leaves: its registration stays, nobody renews or removes it.
        await killed.Pool.Fleet!.HaltAsync();
        var halted = Stopwatch.StartNew();

        await Eventually.TrueAsync(() => a.Pool.GetStatistics().FleetInstances == 2 && b.Pool.GetStatistics().FleetInstances == 2, s_ttl + s_settle, "the halted instance stops counting");
        var dropped = halted.Elapsed;
        Output.WriteLine($"halted instance stopped counting after {dropped.TotalMilliseconds:F0} ms (InstanceTtl {s_ttl.TotalMilliseconds:F0} ms, heartbeat {s_heartbeat.TotalMilliseconds:F0} ms)");

        // It counted until its registration expired: never dropped before the TTL ran out, less the last renewal's age.
        Assert.True(dropped >= s_ttl - s_heartbeat, $"dropped after {dropped.TotalMilliseconds:F0} ms, before its TTL could run out");
        await Eventually.TrueAsync(() => a.Pool.GetStatistics().EffectiveMaxConnections == 16, s_settle, "the survivors grow back into the halted instance's share");
        var members = await server.Admin.GetDatabase().SortedSetRangeByRankAsync(RedisFleetRegistry.KeyFor(Service, "orders"));
        Assert.DoesNotContain((RedisValue)"pod-2", members);
    }

    private static RedisServerOptions MaxClients64()
    {
        var options = new RedisServerOptions();
        options.Arguments.Add("--maxclients");
        options.Arguments.Add("64");
        return options;
    }

    /// <summary>Waits until every instance sees <paramref name="expectedInstances"/> and holds its share, and the server agrees; returns how long that took.</summary>
    private static async Task<TimeSpan> SettleAsync(SocketSampler sampler, List<Instance> instances, int expectedInstances, Func<int, int> expectedLimit)
    {
        var started = Stopwatch.StartNew();
        var ordered = instances.OrderBy(i => i.Id, StringComparer.Ordinal).ToList();
        await Eventually.TrueAsync(
            async () =>
            {
                for (var rank = 0; rank < ordered.Count; rank++)
                {
                    var statistics = ordered[rank].Pool.GetStatistics();
                    if (statistics.FleetInstances != expectedInstances || statistics.EffectiveMaxConnections != expectedLimit(rank) || statistics.Sockets > statistics.EffectiveMaxConnections)
                    {
                        return false;
                    }
                }

                return await sampler.CountAsync() <= FleetMax;
            },
            s_settle,
            $"{expectedInstances} instances hold to their shares of {FleetMax}: " + string.Join("; ", ordered.Select(i => $"{i.Id} {i.Pool.GetStatistics()}")));
        return started.Elapsed;
    }

    /// <summary>One instance of the service: a pool with its own InstanceId, under lease and command load.</summary>
    private sealed class Instance : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _workers = [];
        private int _disposed;
        private long _done;
        private long _exhausted;

        private Instance(RedisPool pool, string id)
        {
            Pool = pool;
            Id = id;
        }

        public RedisPool Pool { get; }

        public string Id { get; }

        public ConcurrentQueue<Exception> Failures { get; } = new();

        public ConcurrentDictionary<RedisPoolExhaustedReason, int> Refusals { get; } = new();

        public long Done => Interlocked.Read(ref _done);

        public long Exhausted => Interlocked.Read(ref _exhausted);

        public static async Task<Instance> StartAsync(RedisServer server, int index, bool load = true)
        {
            var id = $"pod-{index}";
            var pool = new RedisPool(new RedisPoolOptions
            {
                Name = "orders",
                ServiceName = Service,
                InstanceId = id,
                Configuration = server.ConnectionString,
                MaxConnections = 16,
                MaxMultiplexers = 2,
                Leases = { MaxLeases = 12, AcquireTimeout = TimeSpan.FromSeconds(10) },
                Fleet = { Enabled = true, MaxConnections = FleetMax, HeartbeatInterval = s_heartbeat, InstanceTtl = s_ttl },
            });
            await pool.ConnectAsync();
            var instance = new Instance(pool, id);
            if (load)
            {
                for (var w = 0; w < 8; w++)
                {
                    instance._workers.Add(Task.Run(() => instance.LeaseLoopAsync(w)));
                }

                for (var w = 0; w < 4; w++)
                {
                    instance._workers.Add(Task.Run(() => instance.CommandLoopAsync(w)));
                }
            }

            return instance;
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            await _stop.CancelAsync();
            await Task.WhenAll(_workers);
            await Pool.DisposeAsync();
            _stop.Dispose();
        }

        private async Task LeaseLoopAsync(int worker)
        {
            RedisKey[] keys = [$"fleet:{Id}:queue:{worker}"];
            while (!_stop.IsCancellationRequested)
            {
                await RunAsync(async () =>
                {
                    await using var lease = await Pool.LeaseAsync(_stop.Token);
                    await lease.BlockingLeftPopAsync(keys, TimeSpan.FromMilliseconds(50), _stop.Token);
                });
            }
        }

        private async Task CommandLoopAsync(int worker)
        {
            var db = Pool.GetDatabase();
            while (!_stop.IsCancellationRequested)
            {
                await RunAsync(async () =>
                {
                    await db.StringSetAsync($"fleet:{Id}:{worker}", worker);
                    await db.StringGetAsync($"fleet:{Id}:{worker}");
                });
            }
        }

        private async Task RunAsync(Func<Task> operation)
        {
            try
            {
                await operation();
                Interlocked.Increment(ref _done);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (RedisPoolExhaustedException ex)
            {
                // Refused by an admission rule (a lease wait that ran out, a full queue): allowed, and counted.
                Interlocked.Increment(ref _exhausted);
                Refusals.AddOrUpdate(ex.Reason, 1, (_, n) => n + 1);
            }
            catch (Exception ex)
            {
                Failures.Enqueue(ex);
            }
        }
    }

    /// <summary>Counts the service's sockets on the server by CLIENT LIST, continuously, and keeps the peak of a window.</summary>
    private sealed class SocketSampler(RedisServer server) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task? _loop;
        private int _windowPeak = -1;

        public void Start() => _loop = Task.Run(LoopAsync);

        public async Task<int> CountAsync() =>
            (await server.ClientListAsync()).Count(c => c.Name.StartsWith(Service + ":", StringComparison.Ordinal));

        /// <summary>The highest count seen during <paramref name="window"/>, from now.</summary>
        public async Task<int> PeakOverAsync(TimeSpan window)
        {
            BeginWindow();
            await Task.Delay(window);
            return EndWindow();
        }

        public void BeginWindow() => Interlocked.Exchange(ref _windowPeak, 0);

        public int EndWindow() => Interlocked.Exchange(ref _windowPeak, -1);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            if (_loop is not null)
            {
                await _loop;
            }

            _stop.Dispose();
        }

        private async Task LoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var count = await CountAsync();
                int seen;
                do
                {
                    seen = Volatile.Read(ref _windowPeak);
                }
                while (seen >= 0 && count > seen && Interlocked.CompareExchange(ref _windowPeak, count, seen) != seen);

                await Task.Delay(10);
            }
        }
    }
}
