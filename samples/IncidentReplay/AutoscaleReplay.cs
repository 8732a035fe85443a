using System.Diagnostics;
using System.Globalization;
using RedisPoolKit;
using Spectre.Console;
using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>What one autoscale phase measured on the server.</summary>
/// <param name="PeakConnectedClients">The highest <c>connected_clients</c> sampled.</param>
/// <param name="PeakWorkerSockets">The most sockets notification-worker held at once (by <c>CLIENT LIST</c>).</param>
/// <param name="PeakOtherSockets">The most every other client held at once: the other services, the producer, the sampler.</param>
/// <param name="PeakInstances">The most notification-worker instances running at once.</param>
internal sealed record AutoscalePhase(
    string Title,
    bool Fleet,
    long PeakConnectedClients,
    long PeakWorkerSockets,
    long PeakOtherSockets,
    int PeakInstances,
    long RejectedConnections,
    long Produced,
    long PushFailures,
    long Consumed,
    long LeaseWaitsRefused,
    long CartRequests,
    long CartFailures,
    IReadOnlyList<(double Seconds, long Connected, long Workers, int Instances)> Samples);

/// <summary>
/// The autoscaling variant of the replay: during the spike the autoscaler doubles notification-worker from 2 to 4
/// instances, each a RedisPoolKit pool of <see cref="OwnMaxConnections"/> sockets, while cart-service and the
/// notification producer keep their own pools. Run once with each instance holding to its own budget alone and once
/// with the fleet budget on (<see cref="FleetMaxConnections"/> for all instances together): the fleet's sockets stay
/// within its budget however many instances run, the server's <c>connected_clients</c> within that plus the others'.
/// </summary>
internal sealed class AutoscaleReplay(string endpoint, ServerAdmin admin, TimeSpan duration)
{
    public const string WorkerService = "notification-worker";
    public const string QueueKey = "queue:autoscale";

    /// <summary>Each notification-worker instance's own cap (one multiplexer and up to five leases).</summary>
    public const int OwnMaxConnections = 6;

    /// <summary>What all notification-worker instances together may hold with the fleet budget on.</summary>
    public const int FleetMaxConnections = 16;

    public const int SteadyInstances = 2;
    public const int ScaledInstances = 4;
    public const int SteadyConsumers = 1;
    public const int SpikeConsumers = 10;

    private static readonly TimeSpan s_sampleInterval = TimeSpan.FromMilliseconds(100);
    /// <summary>
    /// A new instance grows past its minimum only a whole interval after it joined, by when the others have seen it and
    /// shrunk; 1 s leaves that margin to a machine whose timers run late under load.
    /// </summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    /// <summary>The load spikes at 20 % of the phase; the autoscaler reacts at 40 % and scales back in at 80 %, when the spike ends.</summary>
    public TimeSpan SpikeStart => duration * 0.2;

    public TimeSpan ScaleOut => duration * 0.4;

    public TimeSpan SpikeEnd => duration * 0.8;

    public async Task<AutoscalePhase> RunAsync(bool fleet)
    {
        await admin.Database.KeyDeleteAsync(QueueKey).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        var samples = new List<(double, long, long, int)>();
        long produced = 0, pushFailures = 0, consumed = 0, refused = 0, cartRequests = 0, cartFailures = 0;
        long peakConnected = 0, peakWorkers = 0, peakOthers = 0;
        var peakInstances = 0;
        var rejectedBefore = (await admin.SampleAsync().ConfigureAwait(false)).Rejected;

        await using var carts = new PoolSet();
        for (var i = 0; i < 2; i++)
        {
            carts.Add(new RedisPool(new RedisPoolOptions
            {
                Configuration = endpoint,
                ServiceName = "cart-service",
                InstanceId = $"cart-{i}",
                MaxConnections = 2,
                MaxMultiplexers = 1,
                Leases = { MaxLeases = 0 },
            }));
        }

        await using var producer = new RedisPool(new RedisPoolOptions
        {
            Configuration = endpoint,
            ServiceName = "order-service",
            InstanceId = "order-0",
            Name = "notify",
            MaxConnections = 1,
            MaxMultiplexers = 1,
            Leases = { MaxLeases = 0 },
        });
        await Task.WhenAll(carts.All.Select(p => p.ConnectAsync()).Append(producer.ConnectAsync())).ConfigureAwait(false);

        using var stop = new CancellationTokenSource();
        var instances = new List<WorkerInstance>();

        async Task AddInstanceAsync(int index)
        {
            var pool = new RedisPool(new RedisPoolOptions
            {
                Configuration = endpoint,
                ServiceName = WorkerService,
                InstanceId = $"worker-{index}",
                Name = "queue",
                MaxConnections = OwnMaxConnections,
                MaxMultiplexers = 1,
                Leases = { MaxLeases = OwnMaxConnections - 1, AcquireTimeout = TimeSpan.FromSeconds(1), IdleTimeout = TimeSpan.FromSeconds(2) },
                Fleet = { Enabled = fleet, MaxConnections = FleetMaxConnections, HeartbeatInterval = Heartbeat, InstanceTtl = Heartbeat * 4 },
            });
            await pool.ConnectAsync().ConfigureAwait(false);
            var instanceStop = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var consumers = Enumerable.Range(0, SpikeConsumers).Select(c => Task.Run(() => ConsumeAsync(pool, c, instanceStop.Token))).ToList();
            lock (instances)
            {
                instances.Add(new WorkerInstance(pool, instanceStop, consumers));
            }
        }

        async Task ConsumeAsync(RedisPool pool, int consumer, CancellationToken stopping)
        {
            while (!stopping.IsCancellationRequested)
            {
                var elapsed = clock.Elapsed;
                var active = elapsed >= SpikeStart && elapsed < SpikeEnd ? SpikeConsumers : SteadyConsumers;
                if (consumer >= active)
                {
                    await Pause(TimeSpan.FromMilliseconds(50), stopping).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await using var lease = await pool.LeaseAsync(stopping).ConfigureAwait(false);
                    // Not cancelled mid-command: a BLPOP abandoned after the server popped would lose the item.
                    var result = await lease.Database.ExecuteAsync("BLPOP", QueueKey, 1).ConfigureAwait(false);
                    if (!result.IsNull)
                    {
                        Interlocked.Increment(ref consumed);
                    }
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return;
                }
                catch (RedisPoolException)
                {
                    // No lease within AcquireTimeout: the instance is at its budget (or its share); try again.
                    Interlocked.Increment(ref refused);
                }
            }
        }

        async Task LoadAsync(CancellationToken stopping)
        {
            // Open loop: 40 notifications/s and 20 cart requests/s per instance, x10 during the spike.
            long sequence = 0;
            var next = TimeSpan.Zero;
            while (!stopping.IsCancellationRequested && next < duration)
            {
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    await Pause(wait, stopping).ConfigureAwait(false);
                }

                var seq = sequence++;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await producer.GetDatabase().ListRightPushAsync(QueueKey, seq).ConfigureAwait(false);
                        Interlocked.Increment(ref produced);
                    }
                    catch (Exception ex) when (ex is RedisException or TimeoutException)
                    {
                        Interlocked.Increment(ref pushFailures);
                    }
                }, CancellationToken.None);
                _ = Task.Run(async () =>
                {
                    Interlocked.Increment(ref cartRequests);
                    try
                    {
                        await ServiceRequests.CartAsync(carts.All[(int)(seq % 2)].GetDatabase(), (int)(seq % 2), seq).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is RedisException or TimeoutException)
                    {
                        Interlocked.Increment(ref cartFailures);
                    }
                }, CancellationToken.None);
                var spike = next >= SpikeStart && next < SpikeEnd;
                next += TimeSpan.FromSeconds(1 / (40.0 * (spike ? 10 : 1)));
            }
        }

        async Task SampleAsync(CancellationToken stopping)
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    var info = admin.SampleAsync();
                    var list = admin.Database.ExecuteAsync("CLIENT", "LIST");
                    var (connected, _, _) = await info.ConfigureAwait(false);
                    var text = (string?)await list.ConfigureAwait(false) ?? string.Empty;
                    var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                    var workerSockets = lines.LongCount(l => l.Contains($" name={WorkerService}:", StringComparison.Ordinal));
                    int running;
                    lock (instances)
                    {
                        running = instances.Count;
                    }

                    samples.Add((clock.Elapsed.TotalSeconds, connected, workerSockets, running));
                    peakConnected = Math.Max(peakConnected, connected);
                    peakWorkers = Math.Max(peakWorkers, workerSockets);
                    // Everything else at the same moment: connected_clients less the workers' sockets listed right after.
                    peakOthers = Math.Max(peakOthers, connected - workerSockets);
                    peakInstances = Math.Max(peakInstances, running);
                }
                catch (RedisException)
                {
                    // A missed sample is a gap, not a reason to stop.
                }

                await Pause(s_sampleInterval, stopping).ConfigureAwait(false);
            }
        }

        using var samplerStop = new CancellationTokenSource();
        var sampler = Task.Run(() => SampleAsync(samplerStop.Token));
        for (var i = 0; i < SteadyInstances; i++)
        {
            await AddInstanceAsync(i).ConfigureAwait(false);
        }

        var load = Task.Run(() => LoadAsync(stop.Token));

        // The autoscaler: doubles the instances some time into the spike, removes the extra ones when it ends.
        await Pause(ScaleOut - clock.Elapsed, CancellationToken.None).ConfigureAwait(false);
        await Task.WhenAll(Enumerable.Range(SteadyInstances, ScaledInstances - SteadyInstances).Select(AddInstanceAsync)).ConfigureAwait(false);
        await Pause(SpikeEnd - clock.Elapsed, CancellationToken.None).ConfigureAwait(false);
        List<WorkerInstance> removed;
        lock (instances)
        {
            removed = instances.Skip(SteadyInstances).ToList();
            instances.RemoveRange(SteadyInstances, instances.Count - SteadyInstances);
        }

        // Scale-in: the extra instances stop consuming and shut down (their pools deregister).
        await Task.WhenAll(removed.Select(i => i.StopAsync())).ConfigureAwait(false);

        await Pause(duration - clock.Elapsed, CancellationToken.None).ConfigureAwait(false);
        await load.ConfigureAwait(false);

        // Let the steady consumers drain what is left (while they make progress, bounded), then stop everything.
        await admin.DrainAsync(QueueKey, stall: TimeSpan.FromSeconds(3), cap: ServerAdmin.DrainCap).ConfigureAwait(false);

        await samplerStop.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        await Task.WhenAll(instances.Select(i => i.StopAsync())).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);

        await admin.Database.KeyDeleteAsync(QueueKey).ConfigureAwait(false);
        var rejected = (await admin.SampleAsync().ConfigureAwait(false)).Rejected - rejectedBefore;
        return new AutoscalePhase(
            fleet ? $"fleet budget on (Fleet.MaxConnections = {FleetMaxConnections})" : $"fleet budget off (MaxConnections = {OwnMaxConnections} per instance)",
            fleet,
            peakConnected,
            peakWorkers,
            peakOthers,
            peakInstances,
            rejected,
            produced,
            pushFailures,
            consumed,
            refused,
            cartRequests,
            cartFailures,
            samples);
    }

    /// <summary>Prints the two phases side by side and the verdict; true when the fleet budget held and the run without it did not.</summary>
    public static bool Report(AutoscalePhase without, AutoscalePhase with, int maxClients)
    {
        string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("metric", without.Title, with.Title);
        table.AddRow($"{WorkerService} instances (peak)", N(without.PeakInstances), N(with.PeakInstances));
        table.AddRow($"peak {WorkerService} sockets (CLIENT LIST)", N(without.PeakWorkerSockets), N(with.PeakWorkerSockets));
        table.AddRow("peak sockets of everything else", N(without.PeakOtherSockets), N(with.PeakOtherSockets));
        table.AddRow($"Fleet.MaxConnections + everything else", N(FleetMaxConnections + without.PeakOtherSockets), N(FleetMaxConnections + with.PeakOtherSockets));
        table.AddRow($"peak connected_clients (maxclients {maxClients})", N(without.PeakConnectedClients), N(with.PeakConnectedClients));
        table.AddRow("rejected_connections (delta)", N(without.RejectedConnections), N(with.RejectedConnections));
        table.AddRow("notifications pushed / consumed / push failures", $"{N(without.Produced)} / {N(without.Consumed)} / {N(without.PushFailures)}", $"{N(with.Produced)} / {N(with.Consumed)} / {N(with.PushFailures)}");
        table.AddRow("consumers that waited past Leases.AcquireTimeout", N(without.LeaseWaitsRefused), N(with.LeaseWaitsRefused));
        table.AddRow("cart-service requests / failed", $"{N(without.CartRequests)} / {N(without.CartFailures)}", $"{N(with.CartRequests)} / {N(with.CartFailures)}");
        AnsiConsole.Write(table);

        var held = Held(with);
        var exceeded = !Held(without);
        var verdict = string.Create(CultureInfo.InvariantCulture,
            $"With the fleet budget, peak connected_clients {with.PeakConnectedClients} {(held ? "stayed within" : "went past")} Fleet.MaxConnections + everything else ({FleetMaxConnections} + {with.PeakOtherSockets}); "
            + $"without it, {without.PeakConnectedClients} {(exceeded ? "went past" : "stayed within")} {FleetMaxConnections} + {without.PeakOtherSockets}.");
        AnsiConsole.MarkupLine(held && exceeded && with.Consumed == with.Produced ? $"[green]PASS: {Markup.Escape(verdict)}[/]" : $"[red]FAIL: {Markup.Escape(verdict)}[/]");
        return held && exceeded && with.Consumed == with.Produced;
    }

    /// <summary>Whether the phase's peak stayed within the fleet's budget plus what everything else held.</summary>
    public static bool Held(AutoscalePhase phase) => phase.PeakConnectedClients <= FleetMaxConnections + phase.PeakOtherSockets;

    private static async Task Pause(TimeSpan delay, CancellationToken stopping)
    {
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        try
        {
            await Task.Delay(delay, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One notification-worker instance: its pool and its consumers.</summary>
    private sealed record WorkerInstance(RedisPool Pool, CancellationTokenSource Stop, IReadOnlyList<Task> Consumers)
    {
        public async Task StopAsync()
        {
            await Stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(Consumers).ConfigureAwait(false);
            await Pool.DisposeAsync().ConfigureAwait(false);
            Stop.Dispose();
        }
    }

    /// <summary>Pools disposed together at the end of a phase.</summary>
    private sealed class PoolSet : IAsyncDisposable
    {
        private readonly List<RedisPool> _pools = [];

        public IReadOnlyList<RedisPool> All
        {
            get
            {
                lock (_pools)
                {
                    return [.. _pools];
                }
            }
        }

        public void Add(RedisPool pool)
        {
            lock (_pools)
            {
                _pools.Add(pool);
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var pool in All)
            {
                await pool.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
