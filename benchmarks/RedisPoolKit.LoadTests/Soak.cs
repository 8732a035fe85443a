using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// The soak: RedisPoolKit under mixed commands and lease consumers while its sockets are killed one at a time and
/// the server restarts once. It fails on what leaks, never on speed: sockets the server holds for the pool beyond
/// what the pool counts, permits or lease slots still taken after the load stops, an error of a type the pool does
/// not promise, and memory or threads grown past fixed bounds.
/// </summary>
internal static class Soak
{
    public const string Name = "soak";

    private const int Workers = 16;
    private const int Consumers = 4;
    private const int MaxConnections = 12;
    private const int MaxLeases = 6;
    private const string ServiceName = "soak";
    private const string InstanceId = "loadtests";
    private const string PoolName = "soak";
    private const string Prefix = $"{ServiceName}:{InstanceId}:{PoolName}:";

    /// <summary>Connection and timeout errors within this long after a socket kill are expected.</summary>
    public static readonly TimeSpan KillWindow = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Connection and timeout errors from the server's stop until this long after it answers again are expected. The
    /// restart may open the breaker (refused connects), and the pool promises to serve again within one break (at most
    /// 1.25 x BreakDuration, doubled after a probe that still found the server away) plus a connect: two jittered breaks
    /// and ConnectTimeout, so a slow restart on a busy machine is recovery the promise allows, not a failure.
    /// </summary>
    public static readonly TimeSpan RestartWindow = TimeSpan.FromSeconds(20);

    /// <summary>The managed heap after a full collection at the end may exceed the one at the start by at most this.</summary>
    /// <remarks>
    /// Clean runs grew by 0.1 MB (0.5 to 0.6 MB in 60 s and in 600 s runs), so 8 MB is far above noise; a bound of
    /// 64 MB let a leak of 2 KB per lease (10.5 MB over the 60 s CI run) pass.
    /// </remarks>
    public const long HeapGrowthBound = 8L * 1024 * 1024;

    /// <summary>The process's threads at the end may exceed those at the start by at most this.</summary>
    /// <remarks>
    /// The start is counted under load and the end after it, so clean runs end with fewer threads (1 to 7 fewer in
    /// five runs); a bound of 64 let a leak of one thread per closed socket (14 threads over the 60 s CI run) pass.
    /// </remarks>
    public const int ThreadGrowthBound = 8;

    private static readonly TimeSpan KillInterval = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(30);
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;
    private static readonly RedisKey Queue = "soak:queue";
    private static readonly RedisKey Processing = "soak:processing";

    public static async Task<int> RunAsync(LoadOptions options, string command, TextWriter log)
    {
        var loadAtStart = Report.LoadAverage();
        await using var server = await RedisServer.StartAsync(new RedisServerOptions { StartTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
        log.WriteLine($"Soak: redis-server on {server.ConnectionString}, {options.Duration.TotalSeconds:0} s of load after {Warmup.TotalSeconds:0} s warm-up; a pool socket killed every {KillInterval.TotalSeconds:0} s, the server restarted once half-way.");
        var poolOptions = new RedisPoolOptions
        {
            Configuration = server.ConnectionString,
            Name = PoolName,
            ServiceName = ServiceName,
            InstanceId = InstanceId,
            MaxConnections = MaxConnections,
            Leases = { MaxLeases = MaxLeases, IdleTimeout = TimeSpan.FromSeconds(10) },
        };
        var pool = new RedisPool(poolOptions);
        var record = new SoakRecord();
        var failures = new List<string>();
        try
        {
            await pool.ConnectAsync().ConfigureAwait(false);
            using var stop = new CancellationTokenSource();
            var windows = new Windows();
            var tasks = new List<Task>();
            tasks.AddRange(Enumerable.Range(0, Workers).Select(i => Task.Run(() => WorkAsync(pool, i, record, windows, stop.Token))));
            tasks.AddRange(Enumerable.Range(0, Consumers).Select(i => Task.Run(() => ConsumeAsync(pool, i, record, windows, stop.Token))));

            await Task.Delay(Warmup).ConfigureAwait(false);
            CollectGarbage();
            var start = Figures.Take(pool);
            log.WriteLine($"Start (after warm-up): {start}");

            var began = Stopwatch.GetTimestamp();
            var end = began + LoadRunner.Ticks(options.Duration);
            var restartAt = began + LoadRunner.Ticks(options.Duration / 2);
            var restarted = false;
            var random = new Random(16);
            var overBudget = 0;
            while (Stopwatch.GetTimestamp() < end)
            {
                if (!restarted && Stopwatch.GetTimestamp() >= restartAt)
                {
                    restarted = true;
                    windows.Open(TimeSpan.FromMinutes(5));
                    var stopped = Stopwatch.GetTimestamp();
                    await server.RestartAsync().ConfigureAwait(false);
                    windows.Reset(RestartWindow);
                    record.Note($"server restarted in {Stopwatch.GetElapsedTime(stopped).TotalMilliseconds:0} ms");
                }
                else
                {
                    var killed = await KillOneAsync(server, random, windows).ConfigureAwait(false);
                    if (killed is not null)
                    {
                        Interlocked.Increment(ref record.Kills);
                    }
                }

                // The budget, as the server sees it: twice over in a row is a breach, once may be a socket closing.
                var held = await PoolSocketsAsync(server).ConfigureAwait(false);
                record.MaxServerSockets = Math.Max(record.MaxServerSockets, held);
                overBudget = held > MaxConnections ? overBudget + 1 : 0;
                if (overBudget == 2)
                {
                    failures.Add($"the server held {held} sockets named {Prefix}* at two samples in a row, over MaxConnections {MaxConnections}");
                }

                await Task.Delay(KillInterval).ConfigureAwait(false);
            }

            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(tasks).WaitAsync(SettleTimeout).ConfigureAwait(false);

            // After the load: nothing in flight, queued or leased, and the server holds exactly the sockets the pool counts.
            var settled = await SettleAsync(pool, server).ConfigureAwait(false);
            CollectGarbage();
            var endFigures = Figures.Take(pool);
            log.WriteLine($"End (load stopped, settled, full GC): {endFigures}");
            if (!settled.Ok)
            {
                failures.Add(settled.Problem!);
            }

            if (endFigures.Heap > start.Heap + HeapGrowthBound)
            {
                failures.Add(string.Create(Invariant, $"the managed heap grew from {Mb(start.Heap)} to {Mb(endFigures.Heap)} MB after a full collection, more than the bound {Mb(HeapGrowthBound)} MB"));
            }

            if (endFigures.Threads > start.Threads + ThreadGrowthBound)
            {
                failures.Add($"threads grew from {start.Threads} to {endFigures.Threads}, more than the bound {ThreadGrowthBound}");
            }

            failures.AddRange(record.Unexpected.Select(u => $"unexpected error: {u}"));
            var markdown = Markdown(options, command, record, start, endFigures, settled, failures, loadAtStart);
            log.WriteLine();
            log.WriteLine(markdown);
            if (options.OutputDirectory is not null)
            {
                Directory.CreateDirectory(options.OutputDirectory);
                var path = Path.Combine(options.OutputDirectory, "soak.md");
                await File.WriteAllTextAsync(path, markdown).ConfigureAwait(false);
                log.WriteLine($"Wrote {path}.");
            }
        }
        finally
        {
            await pool.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var failure in failures)
        {
            log.WriteLine($"SOAK FAILED: {failure}");
        }

        if (failures.Count == 0)
        {
            log.WriteLine("SOAK: ok (no leaked socket, permit or lease slot; only expected error types; memory and threads within bounds).");
        }

        return failures.Count == 0 ? 0 : 1;
    }

    private static async Task WorkAsync(RedisPool pool, int worker, SoakRecord record, Windows windows, CancellationToken stop)
    {
        var database = pool.GetDatabase();
        var random = new Random(worker);
        var key = $"soak:w{worker}";
        while (!stop.IsCancellationRequested)
        {
            var operation = random.Next(8);
            try
            {
                switch (operation)
                {
                    case 0:
                        await database.StringSetAsync(key, random.Next()).ConfigureAwait(false);
                        break;
                    case 1:
                        await database.StringGetAsync(key).ConfigureAwait(false);
                        break;
                    case 2:
                        await database.StringIncrementAsync($"{key}:n").ConfigureAwait(false);
                        break;
                    case 3:
                        await database.HashSetAsync($"{key}:h", random.Next(64), random.Next()).ConfigureAwait(false);
                        break;
                    case 4:
                        await database.HashGetAllAsync($"{key}:h").ConfigureAwait(false);
                        break;
                    case 5:
                        await database.ListLeftPushAsync(Queue, worker).ConfigureAwait(false);
                        break;
                    case 6:
                        var batch = database.CreateBatch();
                        var a = batch.StringSetAsync($"{key}:b1", 1);
                        var b = batch.StringGetAsync($"{key}:b1");
                        batch.Execute();
                        await Task.WhenAll(a, b).ConfigureAwait(false);
                        break;
                    default:
                        var transaction = database.CreateTransaction();
                        var t1 = transaction.StringIncrementAsync($"{key}:t");
                        var t2 = transaction.KeyExpireAsync($"{key}:t", TimeSpan.FromMinutes(5));
                        await transaction.ExecuteAsync().ConfigureAwait(false);
                        await Task.WhenAll(t1, t2).ConfigureAwait(false);
                        break;
                }

                Interlocked.Increment(ref record.Commands);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                record.Error(e, windows);
                await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static async Task ConsumeAsync(RedisPool pool, int consumer, SoakRecord record, Windows windows, CancellationToken stop)
    {
        var move = consumer % 2 == 1;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var lease = await pool.LeaseAsync(stop).ConfigureAwait(false);
                for (var i = 0; i < 20 && !stop.IsCancellationRequested; i++)
                {
                    if (move)
                    {
                        await lease.BlockingMoveAsync(Queue, Processing, ListSide.Right, ListSide.Left, TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
                    }
                    else
                    {
                        await lease.BlockingLeftPopAsync([Queue], TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
                    }

                    Interlocked.Increment(ref record.BlockingCalls);
                }

                if (move)
                {
                    await lease.Database.KeyDeleteAsync(Processing).ConfigureAwait(false);
                }

                Interlocked.Increment(ref record.Leases);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                record.Error(e, windows);
                await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static async Task<string?> KillOneAsync(RedisServer server, Random random, Windows windows)
    {
        IReadOnlyList<RedisClientInfo> clients;
        try
        {
            clients = await server.ClientListAsync().ConfigureAwait(false);
        }
        catch (RedisException)
        {
            return null;
        }

        var ours = clients.Where(c => c.Name.StartsWith(Prefix, StringComparison.Ordinal)).ToList();
        if (ours.Count == 0)
        {
            return null;
        }

        var victim = ours[random.Next(ours.Count)];
        windows.Open(KillWindow);
        try
        {
            await server.Admin.GetServer(server.Admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(Invariant)).ConfigureAwait(false);
        }
        catch (RedisServerException)
        {
            return null; // It closed on its own meanwhile.
        }

        return victim.Name;
    }

    private static async Task<int> PoolSocketsAsync(RedisServer server)
    {
        try
        {
            return (await server.ClientListAsync().ConfigureAwait(false)).Count(c => c.Name.StartsWith(Prefix, StringComparison.Ordinal));
        }
        catch (RedisException)
        {
            return 0;
        }
    }

    private static async Task<SettleResult> SettleAsync(RedisPool pool, RedisServer server)
    {
        var deadline = Stopwatch.GetTimestamp() + LoadRunner.Ticks(SettleTimeout);
        while (true)
        {
            var stats = pool.GetStatistics();
            var onServer = await PoolSocketsAsync(server).ConfigureAwait(false);
            var problems = new List<string>();
            if (stats.InFlight != 0 || stats.Queued != 0)
            {
                problems.Add($"{stats.InFlight} commands in flight and {stats.Queued} queued with no load (a permit is lost)");
            }

            if (stats.LeasesUsed != 0 || stats.LeaseWaiters != 0)
            {
                problems.Add($"{stats.LeasesUsed} leases in use and {stats.LeaseWaiters} waiting with every lease disposed (a lease slot is lost)");
            }

            if (stats.ConnectingSockets != 0 || onServer != stats.Sockets)
            {
                problems.Add($"the server holds {onServer} sockets named {Prefix}*, the pool counts {stats.Sockets} ({stats.ConnectingSockets} connecting): a leaked or lost socket");
            }

            if (problems.Count == 0 || Stopwatch.GetTimestamp() > deadline)
            {
                return new SettleResult(problems.Count == 0, problems.Count == 0 ? null : $"{SettleTimeout.TotalSeconds:0} s after the load stopped: {string.Join("; ", problems)}", stats, onServer);
            }

            await Task.Delay(200).ConfigureAwait(false);
        }
    }

    private static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", Invariant);

    private static string Markdown(LoadOptions options, string command, SoakRecord record, Figures start, Figures end, SettleResult settled, IReadOnlyList<string> failures, string loadAtStart)
    {
        var text = new StringBuilder()
            .AppendLine("# Soak")
            .AppendLine()
            .AppendLine(Invariant, $"Command: `{command}`")
            .AppendLine()
            .AppendLine(Invariant, $"Date (UTC) {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm}; {Environment.ProcessorCount} cores; load average {loadAtStart} at start, {Report.LoadAverage()} at end.")
            .AppendLine()
            .AppendLine("## What runs")
            .AppendLine()
            .AppendLine(Invariant, $"- One `RedisPool` (`MaxConnections` {MaxConnections}, `Leases.MaxLeases` {MaxLeases}, `Leases.IdleTimeout` 10 s, defaults otherwise) against its own redis-server, for {options.Duration.TotalSeconds:0} s after {Warmup.TotalSeconds:0} s of warm-up.")
            .AppendLine(Invariant, $"- {Workers} workers through `GetDatabase()`, each looping over SET, GET, INCR, HSET, HGETALL, LPUSH onto a queue, a two-command batch and a two-command transaction.")
            .AppendLine(Invariant, $"- {Consumers} lease consumers: each takes `pool.LeaseAsync()`, runs 20 `BLPOP` (or `BLMOVE`, every other consumer) with a 1 s timeout on it, and disposes it.")
            .AppendLine(Invariant, $"- Every {KillInterval.TotalSeconds:0} s one of the pool's sockets (any role, by its `CLIENT SETNAME` prefix `{Prefix}`) is killed with `CLIENT KILL ID`; half-way the server is killed and restarted on the same port (data is not kept).")
            .AppendLine()
            .AppendLine("## What fails it")
            .AppendLine()
            .AppendLine(Invariant, $"- **A leaked or lost socket**: after the load stops (settling up to {SettleTimeout.TotalSeconds:0} s), the sockets `CLIENT LIST` shows with the pool's prefix differ from `GetStatistics().Sockets`, or some are still connecting. During the run, the server holding more than `MaxConnections` of them at two samples in a row.")
            .AppendLine("- **A lost permit or lease slot**: after the load stops, `InFlight`, `Queued`, `LeasesUsed` or `LeaseWaiters` is not 0.")
            .AppendLine(Invariant, $"- **An error of a type not promised**: any time, a `RedisPoolException` subtype is expected (exhausted, circuit open). Within {KillWindow.TotalSeconds:0} s after a socket kill, and from the server's kill until {RestartWindow.TotalSeconds:0} s after it answers again, `RedisConnectionException` and `RedisTimeoutException` are expected too. Anything else, or those two outside a window, fails the soak.")
            .AppendLine(Invariant, $"- **Growth**: the managed heap after a full collection at the end more than {Mb(HeapGrowthBound)} MB above the start's, or more than {ThreadGrowthBound} threads above the start's. These bounds are about leaks: they do not depend on the machine's speed.")
            .AppendLine()
            .AppendLine("## Figures")
            .AppendLine()
            .AppendLine("| | start (after warm-up) | end (load stopped, settled, full GC) |")
            .AppendLine("|---|---:|---:|")
            .AppendLine(Invariant, $"| managed heap MB | {Mb(start.Heap)} | {Mb(end.Heap)} |")
            .AppendLine(Invariant, $"| working set MB | {Mb(start.WorkingSet)} | {Mb(end.WorkingSet)} |")
            .AppendLine(Invariant, $"| threads | {start.Threads} | {end.Threads} |")
            .AppendLine(Invariant, $"| pool sockets (statistics) | {start.Statistics.Sockets} | {end.Statistics.Sockets} |")
            .AppendLine(Invariant, $"| in flight / queued | {start.Statistics.InFlight} / {start.Statistics.Queued} | {end.Statistics.InFlight} / {end.Statistics.Queued} |")
            .AppendLine(Invariant, $"| leases used / idle / waiting | {start.Statistics.LeasesUsed} / {start.Statistics.LeasesIdle} / {start.Statistics.LeaseWaiters} | {end.Statistics.LeasesUsed} / {end.Statistics.LeasesIdle} / {end.Statistics.LeaseWaiters} |")
            .AppendLine(Invariant, $"| sockets on the server with the pool's prefix | | {settled.OnServer} |")
            .AppendLine()
            .AppendLine(Invariant, $"Over the run: {record.Commands:N0} commands, {record.BlockingCalls:N0} blocking calls on {record.Leases:N0} leases, {record.Kills} sockets killed, most sockets the server held for the pool at once {record.MaxServerSockets} (budget {MaxConnections}).")
            .AppendLine(Invariant, $"Rejections from the pool: exhausted {end.Statistics.RejectedQueueFull + end.Statistics.RejectedQueueTimeout + end.Statistics.RejectedWaitersFull + end.Statistics.RejectedLeaseTimeout + end.Statistics.RejectedBudgetExhausted:N0}, circuit open {end.Statistics.RejectedCircuitOpen:N0}.")
            .AppendLine()
            .AppendLine("| Error type | expected when | count |")
            .AppendLine("|---|---|---:|");
        foreach (var (type, count) in record.Counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.AppendLine(Invariant, $"| {type} | {(type.EndsWith("(unexpected)", StringComparison.Ordinal) ? "never" : type.StartsWith("RedisPool", StringComparison.Ordinal) ? "any time" : "in a kill or restart window")} | {count:N0} |");
        }

        foreach (var note in record.Notes)
        {
            text.AppendLine().Append("- ").AppendLine(note);
        }

        text.AppendLine().AppendLine("## Verdict").AppendLine();
        if (failures.Count == 0)
        {
            text.AppendLine("Passed: no leaked socket, permit or lease slot; only expected error types; memory and threads within bounds.");
        }
        else
        {
            foreach (var failure in failures)
            {
                text.AppendLine(Invariant, $"- FAILED: {failure}");
            }
        }

        return text.ToString();
    }

    private sealed record SettleResult(bool Ok, string? Problem, RedisPoolStatistics Statistics, int OnServer);

    private sealed record Figures(long Heap, long WorkingSet, int Threads, RedisPoolStatistics Statistics)
    {
        public static Figures Take(RedisPool pool)
        {
            using var process = Process.GetCurrentProcess();
            return new Figures(GC.GetTotalMemory(forceFullCollection: false), Environment.WorkingSet, process.Threads.Count, pool.GetStatistics());
        }

        public override string ToString() =>
            string.Create(Invariant, $"managed heap {Mb(Heap)} MB, working set {Mb(WorkingSet)} MB, {Threads} threads; pool: {Statistics.Sockets} sockets, {Statistics.InFlight} in flight, {Statistics.Queued} queued, {Statistics.LeasesUsed} leases used, {Statistics.LeasesIdle} idle, {Statistics.LeaseWaiters} waiting");
    }

    /// <summary>The kill and restart windows: until when connection and timeout errors are expected.</summary>
    private sealed class Windows
    {
        private long _openUntil;

        public void Open(TimeSpan length)
        {
            var until = Stopwatch.GetTimestamp() + LoadRunner.Ticks(length);
            long seen;
            while (until > (seen = Interlocked.Read(ref _openUntil)) && Interlocked.CompareExchange(ref _openUntil, until, seen) != seen)
            {
            }
        }

        /// <summary>Sets the end of the window to <paramref name="length"/> from now, even if that is earlier.</summary>
        public void Reset(TimeSpan length) => Interlocked.Exchange(ref _openUntil, Stopwatch.GetTimestamp() + LoadRunner.Ticks(length));

        public bool IsOpen => Stopwatch.GetTimestamp() <= Interlocked.Read(ref _openUntil);
    }

    private sealed class SoakRecord
    {
#pragma warning disable CA1051, SA1401 // Interlocked needs the fields.
        public long Commands;
        public long BlockingCalls;
        public long Leases;
        public int Kills;
#pragma warning restore CA1051, SA1401

        public int MaxServerSockets { get; set; }

        public ConcurrentDictionary<string, long> Counts { get; } = new(StringComparer.Ordinal);

        public ConcurrentQueue<string> Unexpected { get; } = new();

        public ConcurrentQueue<string> Notes { get; } = new();

        public void Note(string note) => Notes.Enqueue(note);

        public void Error(Exception e, Windows windows)
        {
            var expected = e switch
            {
                RedisPoolException => true,
                RedisConnectionException or RedisTimeoutException => windows.IsOpen,
                _ => false,
            };
            var type = e.GetType().Name + (expected ? string.Empty : " (unexpected)");
            Counts.AddOrUpdate(type, 1, static (_, n) => n + 1);
            if (!expected && Unexpected.Count < 10)
            {
                Unexpected.Enqueue($"{e.GetType().FullName}: {e.Message}");
            }
        }
    }
}
