using System.Diagnostics;
using System.Globalization;
using System.Text;
using HdrHistogram;
using RedisPoolKit.LoadTests.Clients;
using StackExchange.Redis;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// Overload: open-loop arrivals (commands start on a schedule, whether or not earlier ones have finished) at half
/// the measured capacity, then at twice it for a bounded time, then at half again. Raw StackExchange.Redis accepts
/// every command into its backlog; the pool admits up to <c>MaxInFlight</c> + <c>MaxQueueLength</c> and rejects the
/// rest at once. Latency is measured from each command's scheduled arrival, so a generator that falls behind
/// cannot hide queueing (no coordinated omission).
/// </summary>
internal static class Overload
{
    public const string Name = "overload";
    public const double NormalLoad = 0.5;
    public const double OverLoad = 2.0;

    private const int CapacityCallers = 256;
    private const int SetSize = 1000;
    private const string Command = "SINTERCARD 2 (two 1,000-member sets, 500 in common)";
    private static readonly RedisKey SetA = "loadtest:overload:a";
    private static readonly RedisKey SetB = "loadtest:overload:b";
    private const int LatencyBins = 64;

    // Latency bins for the per-bucket p99: bin i holds [BinBase·Growth^(i-1), BinBase·Growth^i) µs, bin 0 below BinBase.
    private const double BinBase = 50;
    private const double Growth = 1.25;

    private static readonly TimeSpan Before = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan After = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Bucket = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(20);
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static IReadOnlyList<OverloadContender> Contenders { get; } =
    [
        new(
            "StackExchange.Redis (raw)",
            "one `ConnectionMultiplexer`, default options (its backlog is unbounded; a command waiting longer than the 5 s `AsyncTimeout` fails with `RedisTimeoutException`)",
            static async endPoint =>
            {
                var multiplexer = await ConnectionMultiplexer.ConnectAsync($"{endPoint},name={RawMultiplexerClient.ClientName}").ConfigureAwait(false);
                return new Connected(multiplexer.GetDatabase(), static () => 1, multiplexer);
            },
            null),
        new(
            "RedisPoolKit",
            "`new RedisPool(new RedisPoolOptions { Configuration = endpoint })`, default options: `AdaptiveInFlight` on (the in-flight limit follows latency, between 64 and `MaxInFlight` 1024), `MaxQueueLength` 1024, `QueueTimeout` 1 s",
            static endPoint => ConnectPoolAsync(new RedisPoolOptions { Configuration = endPoint }),
            static owner => owner is RedisPool pool ? pool.GetStatistics() : null),
        new(
            "RedisPoolKit (fixed limit)",
            "the same with `AdaptiveInFlight = false`: at most `MaxInFlight` 1024 in flight, whatever the latency",
            static endPoint => ConnectPoolAsync(new RedisPoolOptions { Configuration = endPoint, AdaptiveInFlight = false }),
            static owner => owner is RedisPool pool ? pool.GetStatistics() : null),
    ];

    private static async Task<Connected> ConnectPoolAsync(RedisPoolOptions options)
    {
        var pool = new RedisPool(options);
        await pool.ConnectAsync().ConfigureAwait(false);
        return new Connected(pool.GetDatabase(), () => pool.GetStatistics().Multiplexers, pool);
    }

    public static async Task<OverloadRun> RunAsync(LoadOptions options, string endPoint, IServer admin, IDatabase adminDatabase, TextWriter log)
    {
        await PreloadAsync(adminDatabase).ConfigureAwait(false);

        // Capacity: what the server completes with every caller's command pipelined (raw, closed loop, 256 callers).
        LoadRunner.CollectGarbage();
        var baseline = await LoadRunner.CountClientsAsync(admin).ConfigureAwait(false);
        double capacity;
        await using (var raw = await ConnectionMultiplexer.ConnectAsync($"{endPoint},name={RawMultiplexerClient.ClientName}").ConfigureAwait(false))
        {
            capacity = await ClosedLoopAsync(raw.GetDatabase(), CapacityCallers, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)).ConfigureAwait(false);
        }

        await LoadRunner.WaitForClientsAsync(admin, baseline, log).ConfigureAwait(false);
        log.WriteLine(string.Create(Invariant, $"Capacity (raw, closed loop, {CapacityCallers} callers, {Command}, best 500 ms window of 3 s): {capacity:N0} ops/s; offered {NormalLoad * capacity:N0}/s for {Before.TotalSeconds:0} s, {OverLoad * capacity:N0}/s for {options.Duration.TotalSeconds:0} s, {NormalLoad * capacity:N0}/s for {After.TotalSeconds:0} s."));

        var schedule = new Schedule([(NormalLoad * capacity, Before), (OverLoad * capacity, options.Duration), (NormalLoad * capacity, After)]);
        var results = new List<OverloadResult>();
        foreach (var contender in Contenders)
        {
            LoadRunner.CollectGarbage();
            baseline = await LoadRunner.CountClientsAsync(admin).ConfigureAwait(false);
            var connected = await contender.ConnectAsync(endPoint).ConfigureAwait(false);
            try
            {
                var result = await RunOneAsync(contender, connected, schedule, admin, log).ConfigureAwait(false);
                results.Add(result);
            }
            finally
            {
                await connected.Owner.DisposeAsync().ConfigureAwait(false);
                await LoadRunner.WaitForClientsAsync(admin, baseline, log).ConfigureAwait(false);
            }
        }

        return new OverloadRun(capacity, schedule, results);
    }

    public static async Task PreloadAsync(IDatabase database)
    {
        await database.KeyDeleteAsync([SetA, SetB]).ConfigureAwait(false);
        await database.SetAddAsync(SetA, [.. Enumerable.Range(0, SetSize).Select(i => (RedisValue)i)]).ConfigureAwait(false);
        await database.SetAddAsync(SetB, [.. Enumerable.Range(SetSize / 2, SetSize).Select(i => (RedisValue)i)]).ConfigureAwait(false);
    }

    /// <summary>The scenario's one command: costly for the server (it walks a set), one integer back, so the server is what saturates.</summary>
    private static Task<long> CommandAsync(IDatabase database) => database.SetIntersectionLengthAsync([SetA, SetB]);

    /// <summary>
    /// The best rate of any 500 ms window of a closed loop: on a shared machine a neighbour's build lowers the mean, and an
    /// overload offered at twice a depressed capacity would be no overload once the neighbour is done.
    /// </summary>
    private static async Task<double> ClosedLoopAsync(IDatabase database, int callers, TimeSpan ramp, TimeSpan duration)
    {
        var start = Stopwatch.GetTimestamp();
        var measureStart = start + LoadRunner.Ticks(ramp);
        var end = measureStart + LoadRunner.Ticks(duration);
        var loops = Enumerable.Range(0, callers).Select(_ => new LoadCaller()).ToArray();
        var running = Task.WhenAll(loops.Select(loop => Task.Run(() => loop.RunAsync(_ => CommandAsync(database), measureStart, end))));
        await LoadRunner.DelayUntilAsync(measureStart).ConfigureAwait(false);
        double best = 0;
        long previous = 0;
        var previousAt = Stopwatch.GetTimestamp();
        while (Stopwatch.GetTimestamp() < end)
        {
            await LoadRunner.DelayUntilAsync(Math.Min(end, Stopwatch.GetTimestamp() + LoadRunner.Ticks(TimeSpan.FromMilliseconds(500)))).ConfigureAwait(false);
            var now = Stopwatch.GetTimestamp();
            var ops = loops.Sum(l => l.Ops);
            best = Math.Max(best, (ops - previous) / ((double)(now - previousAt) / Stopwatch.Frequency));
            (previous, previousAt) = (ops, now);
        }

        await running.ConfigureAwait(false);
        var errors = loops.Sum(l => l.Errors);
        return errors > 0
            ? throw new InvalidOperationException($"The capacity run had {errors} errors (first: {loops.Select(l => l.FirstError).First(e => e is not null)}).")
            : best;
    }

    private static async Task<OverloadResult> RunOneAsync(OverloadContender contender, Connected connected, Schedule schedule, IServer admin, TextWriter log)
    {
        var recorder = new OverloadRecorder(schedule, Bucket);
        var database = connected.Database;
        var samples = new List<OverloadSample>();
        var memoryBefore = (WorkingSet: Environment.WorkingSet, Heap: GC.GetTotalMemory(forceFullCollection: false));
        var serverMemoryBefore = await ServerMemoryAsync(admin).ConfigureAwait(false);

        var start = Stopwatch.GetTimestamp() + LoadRunner.Ticks(TimeSpan.FromMilliseconds(100));
        recorder.Start = start;
        var generator = new Thread(() => Generate(schedule, start, recorder, database)) { IsBackground = true, Name = "overload-generator", Priority = ThreadPriority.AboveNormal };
        generator.Start();

        var end = start + LoadRunner.Ticks(schedule.Total);
        var deadline = end + LoadRunner.Ticks(SettleTimeout);
        long serverPeak = serverMemoryBefore;
        var nextServerSample = start;
        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            var stats = contender.Statistics?.Invoke(connected.Owner);
            samples.Add(new OverloadSample(
                LoadRunner.Milliseconds(now - start) / 1000,
                Interlocked.Read(ref recorder.Outstanding),
                Environment.WorkingSet,
                GC.GetTotalMemory(forceFullCollection: false),
                stats?.InFlight,
                stats?.Queued,
                stats?.InFlightLimit));
            if (now >= nextServerSample)
            {
                // The admin connection is a separate multiplexer; under overload its INFO answer is late, never lost.
                serverPeak = Math.Max(serverPeak, await ServerMemoryAsync(admin).ConfigureAwait(false));
                nextServerSample = now + LoadRunner.Ticks(TimeSpan.FromSeconds(1));
            }

            if (now >= end && !generator.IsAlive && Interlocked.Read(ref recorder.Outstanding) == 0)
            {
                break;
            }

            if (now >= deadline)
            {
                log.WriteLine($"  {contender.Display}: {Interlocked.Read(ref recorder.Outstanding)} commands still outstanding {SettleTimeout.TotalSeconds:0} s after the schedule ended.");
                break;
            }

            await LoadRunner.DelayUntilAsync(now + LoadRunner.Ticks(Bucket)).ConfigureAwait(false);
        }

        generator.Join();
        var result = new OverloadResult(contender, recorder, samples, memoryBefore.WorkingSet, memoryBefore.Heap, serverMemoryBefore, serverPeak);
        foreach (var phase in Enumerable.Range(0, schedule.Phases.Count))
        {
            var latency = recorder.Completed[phase];
            log.WriteLine(string.Create(
                Invariant,
                $"  {contender.Display,-26} {PhaseName(phase),-9} offered {recorder.Offered[phase],9:N0}  completed {recorder.Succeeded[phase],9:N0}  rejected {recorder.Rejected[phase],9:N0}  timed out {recorder.TimedOut[phase],9:N0}  failed {recorder.Failed[phase],6:N0}  p50 {Ms(latency, 50),8} p99 {Ms(latency, 99),8} p99.9 {Ms(latency, 99.9),8} ms"));
        }

        log.WriteLine(string.Create(Invariant, $"  {contender.Display,-26} recovery {Recovery(result)}, last failure {LastFailure(result)} after the overload; peak working set {result.PeakWorkingSet / 1048576.0:N0} MB (before {result.WorkingSetBefore / 1048576.0:N0} MB); generator lag at most {recorder.MaxLagMilliseconds:N0} ms, {recorder.IssueMicroseconds:0.0} µs per issue call"));
        if (recorder.FirstFailure is not null)
        {
            log.WriteLine($"  {contender.Display}: first untyped failure: {recorder.FirstFailure}");
        }

        return result;
    }

    // One thread issues every arrival on time (or as soon after as it can, keeping the scheduled time for latency).
    private static void Generate(Schedule schedule, long start, OverloadRecorder recorder, IDatabase database)
    {
        long issued = 0;
        var total = schedule.TotalArrivals;
        while (issued < total)
        {
            var now = Stopwatch.GetTimestamp();
            var due = Math.Min(total, schedule.ArrivalsBy(LoadRunner.Milliseconds(now - start) / 1000));
            for (; issued < due; issued++)
            {
                var intended = start + LoadRunner.Ticks(TimeSpan.FromSeconds(schedule.ArrivalTime(issued)));
                var issuing = Stopwatch.GetTimestamp();
                recorder.NoteLag(issuing - intended);
                Issue(recorder, database, intended);
                recorder.IssueTicks += Stopwatch.GetTimestamp() - issuing;
            }

            if (issued < total)
            {
                Thread.Sleep(1);
            }
        }
    }

    private static void Issue(OverloadRecorder recorder, IDatabase database, long intended)
    {
        recorder.Arrived(intended);
        Task<long> task;
        try
        {
            task = CommandAsync(database);
        }
#pragma warning disable CA1031 // Every outcome is classified and counted.
        catch (Exception e)
#pragma warning restore CA1031
        {
            recorder.Ended(intended, e);
            return;
        }

        if (task.IsCompleted)
        {
            recorder.Ended(intended, task.Exception?.InnerException);
        }
        else
        {
            task.ContinueWith(
                static (t, state) =>
                {
                    var (r, i) = ((OverloadRecorder, long))state!;
                    r.Ended(i, t.Exception?.InnerException);
                },
                (recorder, intended),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private static async Task<long> ServerMemoryAsync(IServer admin)
    {
        var info = await admin.InfoAsync("memory").ConfigureAwait(false);
        var rss = info.SelectMany(g => g).FirstOrDefault(p => p.Key == "used_memory_rss").Value;
        return long.TryParse(rss, NumberStyles.Integer, Invariant, out var bytes) ? bytes : 0;
    }

    public static string PhaseName(int phase) => phase switch
    {
        0 => "before",
        1 => "overload",
        _ => "after",
    };

    /// <summary>
    /// Time from the end of the overload to the first 100 ms bucket of arrivals from which on every bucket's p99 is
    /// within max(2 × the before-phase p99.9, before-phase p99.9 + 10 ms) and no arrival failed or was rejected.
    /// </summary>
    public static string Recovery(OverloadResult result)
    {
        var seconds = result.RecoverySeconds();
        return seconds is { } s ? string.Create(Invariant, $"{s:0.0} s") : string.Create(Invariant, $"not within the {After.TotalSeconds:0} s after");
    }

    public static string LastFailure(OverloadResult result)
    {
        var seconds = result.LastFailureSeconds();
        return seconds is { } s ? string.Create(Invariant, $"{s:0.0} s") : "none";
    }

    public static string Markdown(OverloadRun run, string command, string machine, TimeSpan overload)
    {
        var text = new StringBuilder()
            .AppendLine("# Overload: a bounded pool against an unbounded backlog")
            .AppendLine()
            .AppendLine(Invariant, $"Command: `{command}`")
            .AppendLine()
            .AppendLine("## Machine")
            .AppendLine()
            .AppendLine(machine)
            .AppendLine("## Method")
            .AppendLine()
            .AppendLine(Invariant, $"- **Command**: `{Command}`: it costs the server a walk over a set and returns one integer, so the server, not the client's parsing, is what saturates.")
            .AppendLine(Invariant, $"- **Capacity** is measured first, in the same run: raw StackExchange.Redis, closed loop, {CapacityCallers} async callers (every command pipelined on the multiplexer, the server never idle), 1 s ramp, then the best 500 ms window of 3 s: **{run.Capacity:N0} ops/s**. The best window, not the mean: a neighbour's build lowers the mean, and twice a depressed capacity would be no overload once it is done. The server shares the machine's 2 cores with the client.")
            .AppendLine(Invariant, $"- **Offered load**, open loop, the same schedule for both clients: {NormalLoad * run.Capacity:N0}/s ({NormalLoad:0.#}× capacity) for {Before.TotalSeconds:0} s, **{OverLoad * run.Capacity:N0}/s ({OverLoad:0.#}×) for {overload.TotalSeconds:0} s**, {NormalLoad * run.Capacity:N0}/s for {After.TotalSeconds:0} s. One thread issues each arrival at its scheduled time, evenly spaced; when it falls behind it issues the late ones at once. *µs per issue call* is the mean time that thread spent in the client's call per arrival (a synchronous rejection, its exception included); *generator lag* is how late it issued the latest arrival.")
            .AppendLine("- **Latency** of a command is from its *scheduled* arrival to its completion (HdrHistogram, µs), so the generator falling behind counts against the client, never hides queueing. Percentiles are of commands that completed with a value; rejected, timed-out and failed ones are counted apart. Phases group commands by arrival time.")
            .AppendLine("- **Rejected**: `RedisPoolException` subtypes (the pool's `QueueFull`/`QueueTimeout`); **timed out**: `RedisTimeoutException`; **failed**: anything else.")
            .AppendLine("- **Recovery**: from the end of the overload to the first 100 ms bucket of arrivals from which on every bucket's p99 stays within max(2 × the before phase's p99.9, before p99.9 + 10 ms) and none of its arrivals is rejected, times out or fails. **Last failure** is the arrival time, after the end of the overload, of the last command rejected, timed out or failed.")
            .AppendLine("- **Memory**: this process's working set (`Environment.WorkingSet`) and managed heap (`GC.GetTotalMemory(false)`), sampled every 100 ms; redis-server's `used_memory_rss` (INFO, every second: commands written but not yet read sit in its query buffers).")
            .AppendLine("- One client at a time, raw first, each connected and checked before its schedule starts and disposed after every command has ended.")
            .AppendLine();
        foreach (var c in Contenders)
        {
            text.AppendLine(Invariant, $"- {c.Display}: {c.Describe}");
        }

        text.AppendLine()
            .AppendLine("## Results by phase")
            .AppendLine()
            .AppendLine("| Client | Phase | offered | completed | completed/s | rejected | timed out | failed | p50 ms | p99 ms | p99.9 ms | max ms |")
            .AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in run.Results)
        {
            for (var phase = 0; phase < run.Schedule.Phases.Count; phase++)
            {
                var rec = r.Recorder;
                var latency = rec.Completed[phase];
                text.AppendLine(
                    Invariant,
                    $"| {r.Contender.Display} | {PhaseName(phase)} | {rec.Offered[phase]:N0} | {rec.Succeeded[phase]:N0} | {rec.Succeeded[phase] / run.Schedule.Phases[phase].Duration.TotalSeconds:N0} | {rec.Rejected[phase]:N0} | {rec.TimedOut[phase]:N0} | {rec.Failed[phase]:N0} | {Ms(latency, 50)} | {Ms(latency, 99)} | {Ms(latency, 99.9)} | {Ms(latency, 100)} |");
            }
        }

        text.AppendLine()
            .AppendLine("## Recovery, memory, rejections")
            .AppendLine()
            .AppendLine("| Client | recovery after the overload | last failure after the overload | working set before → peak MB | managed heap peak MB | redis-server RSS before → peak MB | rejection p99 ms | generator lag max ms | µs per issue call (mean) |")
            .AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in run.Results)
        {
            text.AppendLine(
                Invariant,
                $"| {r.Contender.Display} | {Recovery(r)} | {LastFailure(r)} | {r.WorkingSetBefore / 1048576.0:N0} → {r.PeakWorkingSet / 1048576.0:N0} | {r.PeakHeap / 1048576.0:N0} | {r.ServerRssBefore / 1048576.0:N0} → {r.ServerRssPeak / 1048576.0:N0} | {Ms(r.Recorder.RejectionLatency, 99)} | {r.Recorder.MaxLagMilliseconds:N0} | {r.Recorder.IssueMicroseconds:0.0} |");
        }

        text.AppendLine()
            .AppendLine("## Timeline (per second, by arrival)")
            .AppendLine()
            .AppendLine("| s | offered/s | " + string.Join(" | ", run.Results.Select(r => $"{r.Contender.Display}: completed / rejected / timed out, p99 ms, outstanding{(r.Contender.Statistics is null ? string.Empty : ", in-flight limit")}")) + " |")
            .AppendLine("|---:|---:|" + string.Concat(run.Results.Select(_ => "---|")));
        var seconds = (int)Math.Ceiling(run.Schedule.Total.TotalSeconds);
        for (var second = 0; second < seconds; second++)
        {
            text.Append(Invariant, $"| {second} | {run.Schedule.ArrivalsBy(second + 1) - run.Schedule.ArrivalsBy(second):N0} |");
            foreach (var r in run.Results)
            {
                var (completed, rejected, timedOut, p99) = r.Recorder.Second(second);
                var inSecond = r.Samples.Where(s => s.Seconds >= second && s.Seconds < second + 1).ToList();
                var outstanding = inSecond.Select(s => s.Outstanding).DefaultIfEmpty(0).Max();
                var limits = inSecond.Where(s => s.InFlightLimit is not null).Select(s => s.InFlightLimit!.Value).ToList();
                var limit = limits.Count == 0 ? string.Empty : string.Create(Invariant, $", limit {limits.Min():N0}-{limits.Max():N0}");
                text.Append(Invariant, $" {completed:N0} / {rejected:N0} / {timedOut:N0}, {p99:0.0}, {outstanding:N0}{limit} |");
            }

            text.AppendLine();
        }

        var failures = run.Results.Where(r => r.Recorder.FirstFailure is not null).ToList();
        if (failures.Count > 0)
        {
            text.AppendLine().AppendLine("First failure of another type:").AppendLine();
            foreach (var r in failures)
            {
                text.AppendLine(Invariant, $"- {r.Contender.Display}: {r.Recorder.FirstFailure}");
            }
        }

        return text.ToString();
    }

    private static string Ms(LongConcurrentHistogram histogram, double percentile) =>
        histogram.TotalCount == 0 ? "–" : (histogram.GetValueAtPercentile(percentile) / 1000.0).ToString("0.0", Invariant);

    /// <summary>Bin of a latency in µs for the per-bucket p99 (25 % wide bins from 50 µs; the last bin is open).</summary>
    public static int Bin(long micros) =>
        micros < BinBase ? 0 : Math.Min(LatencyBins - 1, 1 + (int)Math.Floor(Math.Log(micros / BinBase) / Math.Log(Growth)));

    /// <summary>The upper edge, in ms, of a bin: what a per-bucket percentile reports.</summary>
    public static double BinUpperMilliseconds(int bin) => BinBase * Math.Pow(Growth, bin) / 1000;

    internal const int BinCount = LatencyBins;
}

/// <summary>A client in the overload scenario: how it connects, and the pool's statistics when it has some.</summary>
internal sealed record OverloadContender(string Display, string Describe, Func<string, Task<Connected>> ConnectAsync, Func<IAsyncDisposable, RedisPoolStatistics?>? Statistics);

/// <summary>Every 100 ms: commands outstanding (issued, not ended), the process's memory, and the pool's in-flight and queued counts.</summary>
internal sealed record OverloadSample(double Seconds, long Outstanding, long WorkingSet, long Heap, int? InFlight, int? Queued, int? InFlightLimit);

internal sealed record OverloadRun(double Capacity, Schedule Schedule, IReadOnlyList<OverloadResult> Results);

internal sealed class OverloadResult(OverloadContender contender, OverloadRecorder recorder, IReadOnlyList<OverloadSample> samples, long workingSetBefore, long heapBefore, long serverRssBefore, long serverRssPeak)
{
    public OverloadContender Contender { get; } = contender;

    public OverloadRecorder Recorder { get; } = recorder;

    public IReadOnlyList<OverloadSample> Samples { get; } = samples;

    public long WorkingSetBefore { get; } = workingSetBefore;

    public long HeapBefore { get; } = heapBefore;

    public long PeakWorkingSet => Samples.Count == 0 ? WorkingSetBefore : Samples.Max(s => s.WorkingSet);

    public long PeakHeap => Samples.Count == 0 ? HeapBefore : Samples.Max(s => s.Heap);

    public long ServerRssBefore { get; } = serverRssBefore;

    public long ServerRssPeak { get; } = serverRssPeak;

    public double? LastFailureSeconds()
    {
        var schedule = Recorder.Schedule;
        var overloadEnd = schedule.Phases[0].Duration.TotalSeconds + schedule.Phases[1].Duration.TotalSeconds;
        var first = (int)Math.Round(overloadEnd / Recorder.BucketSeconds);
        for (var bucket = Recorder.Buckets - 1; bucket >= first; bucket--)
        {
            if (Recorder.BucketFailures(bucket) > 0)
            {
                return (bucket + 1 - first) * Recorder.BucketSeconds;
            }
        }

        return null;
    }

    public double? RecoverySeconds()
    {
        var schedule = Recorder.Schedule;
        var bucketSeconds = Recorder.BucketSeconds;
        var beforeP999 = Recorder.Completed[0].TotalCount == 0 ? 0 : Recorder.Completed[0].GetValueAtPercentile(99.9) / 1000.0;
        var bound = Math.Max(2 * beforeP999, beforeP999 + 10);
        var overloadEnd = schedule.Phases[0].Duration.TotalSeconds + schedule.Phases[1].Duration.TotalSeconds;
        var first = (int)Math.Round(overloadEnd / bucketSeconds);
        var last = Recorder.Buckets - 1;
        int? recovered = null;
        for (var bucket = last; bucket >= first; bucket--)
        {
            if (!Recorder.BucketHealthy(bucket, bound))
            {
                break;
            }

            recovered = bucket;
        }

        return recovered is { } b ? (b - first) * bucketSeconds : null;
    }
}

/// <summary>Piecewise-constant arrival rates: (arrivals per second, duration) phases.</summary>
internal sealed class Schedule(IReadOnlyList<(double Rate, TimeSpan Duration)> phases)
{
    public IReadOnlyList<(double Rate, TimeSpan Duration)> Phases { get; } = phases;

    public TimeSpan Total { get; } = TimeSpan.FromTicks(phases.Sum(p => p.Duration.Ticks));

    public long TotalArrivals => ArrivalsBy(Total.TotalSeconds);

    /// <summary>How many arrivals are due by <paramref name="seconds"/> after the start.</summary>
    public long ArrivalsBy(double seconds)
    {
        double arrivals = 0, elapsed = 0;
        foreach (var (rate, duration) in Phases)
        {
            var span = Math.Min(duration.TotalSeconds, Math.Max(0, seconds - elapsed));
            arrivals += rate * span;
            elapsed += duration.TotalSeconds;
        }

        return (long)Math.Floor(arrivals);
    }

    /// <summary>When arrival <paramref name="index"/> (0-based) is due, in seconds after the start.</summary>
    public double ArrivalTime(long index)
    {
        double before = 0, elapsed = 0;
        foreach (var (rate, duration) in Phases)
        {
            var inPhase = rate * duration.TotalSeconds;
            if (index < before + inPhase)
            {
                return elapsed + ((index - before) / rate);
            }

            before += inPhase;
            elapsed += duration.TotalSeconds;
        }

        return elapsed;
    }

    public int PhaseAt(double seconds)
    {
        double elapsed = 0;
        for (var i = 0; i < Phases.Count; i++)
        {
            elapsed += Phases[i].Duration.TotalSeconds;
            if (seconds < elapsed)
            {
                return i;
            }
        }

        return Phases.Count - 1;
    }
}

/// <summary>Thread-safe counts of one client's overload run: by phase, by 100 ms bucket of arrival, and latency bins per bucket.</summary>
internal sealed class OverloadRecorder
{
    private readonly long[] _bucketCompleted;
    private readonly long[] _bucketRejected;
    private readonly long[] _bucketTimedOut;
    private readonly long[] _bucketFailed;
    private readonly int[] _bins;
    private long _maxLag;
    private string? _firstFailure;

    public OverloadRecorder(Schedule schedule, TimeSpan bucket)
    {
        Schedule = schedule;
        BucketSeconds = bucket.TotalSeconds;
        Buckets = (int)Math.Ceiling(schedule.Total.TotalSeconds / BucketSeconds);
        var phases = schedule.Phases.Count;
        Offered = new long[phases];
        Succeeded = new long[phases];
        Rejected = new long[phases];
        TimedOut = new long[phases];
        Failed = new long[phases];
        Completed = [.. Enumerable.Range(0, phases).Select(_ => new LongConcurrentHistogram(1, 120_000_000, 3))];
        _bucketCompleted = new long[Buckets];
        _bucketRejected = new long[Buckets];
        _bucketTimedOut = new long[Buckets];
        _bucketFailed = new long[Buckets];
        _bins = new int[Buckets * Overload.BinCount];
    }

    public Schedule Schedule { get; }

    public double BucketSeconds { get; }

    public int Buckets { get; }

    public long Start { get; set; }

#pragma warning disable CA1051, SA1401 // Interlocked needs the field.
    public long Outstanding;
#pragma warning restore CA1051, SA1401

    public long[] Offered { get; }

    public long[] Succeeded { get; }

    public long[] Rejected { get; }

    public long[] TimedOut { get; }

    public long[] Failed { get; }

    public LongConcurrentHistogram[] Completed { get; }

    public LongConcurrentHistogram RejectionLatency { get; } = new(1, 120_000_000, 3);

    /// <summary>Time the generator thread spent inside the client's call (and, for a synchronous rejection, its exception), summed.</summary>
    public long IssueTicks { get; set; }

    /// <summary>Mean µs the generator spent issuing one command: what the client's call costs the caller, rejections included.</summary>
    public double IssueMicroseconds => Offered.Sum() == 0 ? 0 : LoadRunner.Milliseconds(IssueTicks) * 1000 / Offered.Sum();

    public double MaxLagMilliseconds => LoadRunner.Milliseconds(Interlocked.Read(ref _maxLag));

    public string? FirstFailure => _firstFailure;

    public void NoteLag(long ticks)
    {
        long seen;
        while (ticks > (seen = Interlocked.Read(ref _maxLag)) && Interlocked.CompareExchange(ref _maxLag, ticks, seen) != seen)
        {
        }
    }

    public void Arrived(long intended)
    {
        Interlocked.Increment(ref Outstanding);
        Interlocked.Increment(ref Offered[Phase(intended)]);
    }

    public void Ended(long intended, Exception? error)
    {
        var micros = Math.Max(1, (long)((Stopwatch.GetTimestamp() - intended) * 1_000_000.0 / Stopwatch.Frequency));
        var phase = Phase(intended);
        var bucket = BucketOf(intended);
        switch (error)
        {
            case null:
                Interlocked.Increment(ref Succeeded[phase]);
                Interlocked.Increment(ref _bucketCompleted[bucket]);
                Interlocked.Increment(ref _bins[(bucket * Overload.BinCount) + Overload.Bin(micros)]);
                Completed[phase].RecordValue(Math.Min(micros, 120_000_000));
                break;
            case RedisPoolException:
                Interlocked.Increment(ref Rejected[phase]);
                Interlocked.Increment(ref _bucketRejected[bucket]);
                RejectionLatency.RecordValue(Math.Min(micros, 120_000_000));
                break;
            case RedisTimeoutException:
                Interlocked.Increment(ref TimedOut[phase]);
                Interlocked.Increment(ref _bucketTimedOut[bucket]);
                break;
            default:
                Interlocked.Increment(ref Failed[phase]);
                Interlocked.Increment(ref _bucketFailed[bucket]);
                Interlocked.CompareExchange(ref _firstFailure, $"{error.GetType().Name}: {error.Message}", null);
                break;
        }

        Interlocked.Decrement(ref Outstanding);
    }

    public long BucketFailures(int bucket) => _bucketRejected[bucket] + _bucketTimedOut[bucket] + _bucketFailed[bucket];

    /// <summary>True when no arrival of <paramref name="bucket"/> was rejected or failed and its p99 is within <paramref name="boundMilliseconds"/>.</summary>
    public bool BucketHealthy(int bucket, double boundMilliseconds)
    {
        if (_bucketRejected[bucket] + _bucketTimedOut[bucket] + _bucketFailed[bucket] > 0)
        {
            return false;
        }

        // The p99's bin must start within the bound (a bin is 25 % wide).
        var bin = PercentileBin(bucket, bucket, 99);
        return bin == 0 || Overload.BinUpperMilliseconds(bin - 1) <= boundMilliseconds;
    }

    /// <summary>Completed, rejected and timed-out counts, and the p99 in ms, of the arrivals in one second.</summary>
    public (long Completed, long Rejected, long TimedOut, double P99) Second(int second)
    {
        var perSecond = (int)Math.Round(1 / BucketSeconds);
        var from = second * perSecond;
        var to = Math.Min(Buckets - 1, from + perSecond - 1);
        long completed = 0, rejected = 0, timedOut = 0;
        for (var b = from; b <= to; b++)
        {
            completed += _bucketCompleted[b];
            rejected += _bucketRejected[b];
            timedOut += _bucketTimedOut[b] + _bucketFailed[b];
        }

        return (completed, rejected, timedOut, completed == 0 ? 0 : Overload.BinUpperMilliseconds(PercentileBin(from, to, 99)));
    }

    private int PercentileBin(int from, int to, double percentile)
    {
        long total = 0;
        for (var b = from; b <= to; b++)
        {
            for (var i = 0; i < Overload.BinCount; i++)
            {
                total += _bins[(b * Overload.BinCount) + i];
            }
        }

        if (total == 0)
        {
            return 0;
        }

        var target = (long)Math.Ceiling(total * percentile / 100);
        long seen = 0;
        for (var i = 0; i < Overload.BinCount; i++)
        {
            for (var b = from; b <= to; b++)
            {
                seen += _bins[(b * Overload.BinCount) + i];
            }

            if (seen >= target)
            {
                return i;
            }
        }

        return Overload.BinCount - 1;
    }

    private int Phase(long intended) => Schedule.PhaseAt((double)(intended - Start) / Stopwatch.Frequency);

    private int BucketOf(long intended) => Math.Clamp((int)((double)(intended - Start) / Stopwatch.Frequency / BucketSeconds), 0, Buckets - 1);
}
