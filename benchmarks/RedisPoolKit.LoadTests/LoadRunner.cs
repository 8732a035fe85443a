using System.Diagnostics;
using System.Globalization;
using HdrHistogram;
using RedisPoolKit.LoadTests.Clients;
using StackExchange.Redis;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// Runs every scenario against every client, one client at a time, in rounds whose client order rotates so
/// that drift on a busy machine (other builds, thermal, GC of earlier runs) lands on all clients alike.
/// The CI gate's run (<see cref="RunPairedAsync"/>) instead keeps two clients connected and measures them in
/// ABBA-ordered pairs of windows (<see cref="PairedRounds"/>).
/// </summary>
internal sealed class LoadRunner(LoadOptions options, string endPoint, IServer admin, TextWriter log)
{
    public const int GetKeyCount = 1024;
    private const int SetKeysPerCaller = 16;
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);

    // The callers are fresh tasks in every paired window; by a quarter second all 64 are issuing commands.
    private static readonly TimeSpan PairRamp = TimeSpan.FromMilliseconds(250);

    private readonly Dictionary<string, string> _unavailable = [];

    public static LongHistogram NewHistogram() => new(Stopwatch.Frequency * 60, 3);

    public static async Task PreloadAsync(IDatabase database, IEnumerable<int> sizes)
    {
        foreach (var size in sizes)
        {
            var value = Value(size);
            var writes = Enumerable.Range(0, GetKeyCount).Select(i => database.StringSetAsync(GetKey(size, i), value));
            await Task.WhenAll(writes).ConfigureAwait(false);
        }
    }

    public async Task<List<ClientResult>> RunAsync(IReadOnlyList<LoadClientKind> kinds)
    {
        var results = new List<ClientResult>();
        foreach (var callers in options.Callers)
        {
            foreach (var size in options.Sizes)
            {
                foreach (var operation in options.Operations)
                {
                    var scenario = new Scenario(operation, size, callers);
                    var byKind = kinds.ToDictionary(k => k.Id, k => new ClientResult(k, scenario));
                    results.AddRange(byKind.Values);
                    for (var round = 0; round < options.Rounds; round++)
                    {
                        foreach (var kind in kinds.Where(k => _unavailable.ContainsKey(k.Id)))
                        {
                            byKind[kind.Id].NotAvailable = _unavailable[kind.Id];
                        }

                        var running = kinds.Where(k => !_unavailable.ContainsKey(k.Id)).ToList();
                        for (var i = 0; i < running.Count; i++)
                        {
                            var kind = running[(i + round) % running.Count];
                            await RunOneAsync(byKind[kind.Id], round).ConfigureAwait(false);
                        }
                    }
                }
            }
        }

        return results;
    }

    public static string GetKey(int size, int index) => $"loadtest:get:{size}:{index}";

    public static byte[] Value(int size)
    {
        var value = new byte[size];
        new Random(size).NextBytes(value);
        return value;
    }

    private async Task RunOneAsync(ClientResult result, int round)
    {
        var kind = result.Kind;
        var scenario = result.Scenario;
        if (result.NotAvailable is not null)
        {
            return;
        }

        CollectGarbage();
        var baseline = await CountClientsAsync(admin).ConfigureAwait(false);
        ILoadClient? client = null;
        try
        {
            await GuardAsync(result, async () =>
            {
                client = kind.Create(endPoint, scenario.Callers);
                await ConnectAndCheckAsync(client, scenario).ConfigureAwait(false);
                var measured = await MeasureAsync(client, scenario, options.Warmup, options.Duration, async () => await CountClientsAsync(admin).ConfigureAwait(false) - baseline).ConfigureAwait(false);
                result.Rounds.Add(measured);
                LogWindow($"round {round + 1}", kind, scenario, measured);
            }).ConfigureAwait(false);
        }
        finally
        {
            if (client is not null)
            {
                await DisposeQuietlyAsync(client, kind).ConfigureAwait(false);
            }

            await WaitForClientsAsync(admin, baseline, log).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The CI gate's run, for every scenario: both clients connected and checked, each warmed up once for
    /// <see cref="LoadOptions.Warmup"/> (connections open, code jitted at tier 1), then <see cref="LoadOptions.Rounds"/>
    /// pairs of <see cref="LoadOptions.Duration"/> windows in ABBA order, with a full collection before every window
    /// so neither side pays for the other's garbage. Both stay connected throughout, so no window pays for a connect.
    /// </summary>
    public async Task<List<PairedRun>> RunPairedAsync(LoadClientKind baselineKind, LoadClientKind candidateKind)
    {
        var runs = new List<PairedRun>();
        foreach (var callers in options.Callers)
        {
            foreach (var size in options.Sizes)
            {
                foreach (var operation in options.Operations)
                {
                    var scenario = new Scenario(operation, size, callers);
                    var run = new PairedRun(new ClientResult(baselineKind, scenario), new ClientResult(candidateKind, scenario));
                    runs.Add(run);
                    await RunPairsAsync(run).ConfigureAwait(false);
                }
            }
        }

        return runs;
    }

    private async Task RunPairsAsync(PairedRun run)
    {
        var scenario = run.Baseline.Scenario;
        var before = await CountClientsAsync(admin).ConfigureAwait(false);
        var clients = new Dictionary<PairSide, ILoadClient>();
        try
        {
            foreach (var (side, result) in new[] { (PairSide.Baseline, run.Baseline), (PairSide.Candidate, run.Candidate) })
            {
                var connected = await GuardAsync(result, async () =>
                {
                    var client = result.Kind.Create(endPoint, scenario.Callers);
                    clients[side] = client;
                    await ConnectAndCheckAsync(client, scenario).ConfigureAwait(false);
                }).ConfigureAwait(false);
                if (!connected)
                {
                    return;
                }
            }

            // The baseline's sockets carry its name; everything else above the count before the run is the candidate's.
            Func<Task<int>> Sockets(PairSide side) => async () =>
            {
                var list = await admin.ClientListAsync().ConfigureAwait(false);
                var baseline = list.Count(c => c.Name == RawMultiplexerClient.ClientName);
                return side == PairSide.Baseline ? baseline : list.Length - before - baseline;
            };

            foreach (var side in new[] { PairSide.Baseline, PairSide.Candidate })
            {
                var result = run.Result(side);
                var warmed = await GuardAsync(result, async () =>
                {
                    CollectGarbage();
                    var warmup = await MeasureAsync(clients[side], scenario, TimeSpan.Zero, options.Warmup, Sockets(side)).ConfigureAwait(false);
                    LogWindow("warm-up", result.Kind, scenario, warmup);
                }).ConfigureAwait(false);
                if (!warmed)
                {
                    return;
                }
            }

            foreach (var (pair, side) in PairedRounds.Schedule(options.Rounds))
            {
                var result = run.Result(side);
                var measured = await GuardAsync(result, async () =>
                {
                    CollectGarbage();
                    var window = await MeasureAsync(clients[side], scenario, PairRamp, options.Duration, Sockets(side)).ConfigureAwait(false);
                    result.Rounds.Add(window);
                    LogWindow($"pair {pair + 1,2}", result.Kind, scenario, window);
                }).ConfigureAwait(false);
                if (!measured)
                {
                    return;
                }

                if (run.Ratios.Count == pair + 1)
                {
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  pair {pair + 1,2} {run.Candidate.Kind.Display} / {run.Baseline.Kind.Display} = {run.Ratios[pair]:0.000}"));
                }
            }
        }
        finally
        {
            foreach (var (side, client) in clients)
            {
                await DisposeQuietlyAsync(client, run.Result(side).Kind).ConfigureAwait(false);
            }

            await WaitForClientsAsync(admin, before, log).ConfigureAwait(false);
        }
    }

    /// <summary>Runs one step of <paramref name="result"/>'s client; a failure is recorded on the result and logged, and the run goes on.</summary>
    /// <returns>False when the step failed: the client is marked not available (NotImplementedException) or failed (anything else).</returns>
    private async Task<bool> GuardAsync(ClientResult result, Func<Task> step)
    {
        try
        {
            await step().ConfigureAwait(false);
            return true;
        }
        catch (NotImplementedException e)
        {
            var text = $"not available: {e.TargetSite?.DeclaringType?.Name}.{e.TargetSite?.Name} throws NotImplementedException";
            _unavailable[result.Kind.Id] = text;
            result.NotAvailable = text;
            log.WriteLine($"  {result.Kind.Display}: {text}");
        }
#pragma warning disable CA1031 // A client that fails is reported in the table and the run goes on with the others.
        catch (Exception e)
#pragma warning restore CA1031
        {
            result.NotAvailable = $"failed: {e.GetType().Name}: {e.Message}";
            result.Failed = true;
            log.WriteLine($"  {result.Kind.Display}, {result.Scenario}: {result.NotAvailable}");
        }

        return false;
    }

    // The previous window's garbage is collected now, not during the next client's window.
    public static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private void LogWindow(string label, LoadClientKind kind, Scenario scenario, RoundResult measured) =>
        log.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  {label} {kind.Display,-26} {scenario,-28} {measured.OpsPerSecond,10:N0} ops/s  p99 {Milliseconds(measured.Latency.GetValueAtPercentile(99)),7:0.000} ms  {measured.AllocatedBytes / Math.Max(1, measured.Ops),6:N0} B/op  {measured.CpuMicrosecondsPerOp,5:0.00} µs CPU/op  {measured.Sockets,4} sockets  {ThreadPool.ThreadCount,3} pool threads{(measured.Errors > 0 ? $"  {measured.Errors} errors" : string.Empty)}"));

    private async Task DisposeQuietlyAsync(ILoadClient client, LoadClientKind kind)
    {
        try
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A client that cannot be disposed is noted; its sockets are waited for below.
        catch (Exception e)
#pragma warning restore CA1031
        {
            log.WriteLine($"  note: disposing {kind.Display} threw {e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task ConnectAndCheckAsync(ILoadClient client, Scenario scenario)
    {
        await client.ConnectAsync().ConfigureAwait(false);
        var length = await client.GetLengthAsync(GetKey(scenario.Size, 0)).ConfigureAwait(false);
        if (length != scenario.Size)
        {
            throw new InvalidOperationException($"GET {GetKey(scenario.Size, 0)} returned {length} bytes, expected {scenario.Size}.");
        }
    }

    /// <summary>Runs the callers for <paramref name="ramp"/> unmeasured, then counts what completes in the next <paramref name="duration"/>.</summary>
    public static async Task<RoundResult> MeasureAsync(ILoadClient client, Scenario scenario, TimeSpan ramp, TimeSpan duration, Func<Task<int>> countSockets)
    {
        var getKeys = Enumerable.Range(0, GetKeyCount).Select(i => GetKey(scenario.Size, i)).ToArray();
        var setKeys = Enumerable.Range(0, scenario.Callers)
            .Select(c => Enumerable.Range(0, SetKeysPerCaller).Select(i => $"loadtest:set:{scenario.Size}:{c}:{i}").ToArray())
            .ToArray();
        var value = Value(scenario.Size);
        Func<int, int, Task> operation = scenario.Operation == "GET"
            ? (caller, i) => client.GetAsync(getKeys[((caller * 97) + i) & (GetKeyCount - 1)])
            : (caller, i) => client.SetAsync(setKeys[caller][i & (SetKeysPerCaller - 1)], value);

        var start = Stopwatch.GetTimestamp();
        var window = new Window(start + Ticks(ramp), start + Ticks(ramp) + Ticks(duration));
        var callers = Enumerable.Range(0, scenario.Callers).Select(_ => new LoadCaller()).ToArray();
        var tasks = callers.Select((caller, index) => Task.Run(() => caller.RunAsync(i => operation(index, i), window.MeasureStart, window.End))).ToArray();

        await DelayUntilAsync(window.MeasureStart).ConfigureAwait(false);
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var sockets = 0;
        foreach (var fraction in new[] { 0.25, 0.5, 0.75 })
        {
            await DelayUntilAsync(window.MeasureStart + (long)((window.End - window.MeasureStart) * fraction)).ConfigureAwait(false);
            sockets = Math.Max(sockets, await countSockets().ConfigureAwait(false));
        }

        await DelayUntilAsync(window.End).ConfigureAwait(false);
        var allocatedAfter = GC.GetTotalAllocatedBytes(precise: true);
        var cpuAfter = Environment.CpuUsage.TotalTime;
        var all = Task.WhenAll(tasks);
        if (await Task.WhenAny(all, Task.Delay(SettleTimeout)).ConfigureAwait(false) != all)
        {
            throw new TimeoutException($"Callers were still running {SettleTimeout.TotalSeconds:0} s after the window closed: a command hangs.");
        }

        var latency = NewHistogram();
        foreach (var caller in callers)
        {
            latency.Add(caller.Latency);
        }

        var ops = callers.Sum(c => c.Ops);
        var seconds = (double)(window.End - window.MeasureStart) / Stopwatch.Frequency;
        return new RoundResult(
            ops / seconds,
            ops,
            allocatedAfter - allocatedBefore,
            cpuAfter - cpuBefore,
            sockets,
            callers.Sum(c => c.Errors),
            callers.Select(c => c.FirstError).FirstOrDefault(e => e is not null),
            latency);
    }

    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static long Ticks(TimeSpan time) => (long)(time.TotalSeconds * Stopwatch.Frequency);

    public static async Task DelayUntilAsync(long timestamp)
    {
        var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp);
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining).ConfigureAwait(false);
        }
    }

    public static async Task<int> CountClientsAsync(IServer admin) => (await admin.ClientListAsync().ConfigureAwait(false)).Length;

    /// <summary>Waits until the server's client count is back to <paramref name="baseline"/>, so the next client's sockets are counted from a settled server.</summary>
    public static async Task WaitForClientsAsync(IServer admin, int baseline, TextWriter log)
    {
        var deadline = Stopwatch.GetTimestamp() + Ticks(SettleTimeout);
        int count;
        while ((count = await CountClientsAsync(admin).ConfigureAwait(false)) > baseline)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                log.WriteLine($"  note: {count - baseline} sockets still open {SettleTimeout.TotalSeconds:0} s after dispose; the next client's socket count is taken relative to them.");
                return;
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private readonly record struct Window(long MeasureStart, long End);
}

/// <summary>One async caller, shared by every scenario: issues commands back to back and records those that start and end inside the window.</summary>
internal sealed class LoadCaller
{
    public LongHistogram Latency { get; } = LoadRunner.NewHistogram();

    public long Ops { get; private set; }

    public long Errors { get; private set; }

    public string? FirstError { get; private set; }

    public async Task RunAsync(Func<int, Task> operation, long measureStart, long end)
    {
        for (var i = 0; ; i++)
        {
            var started = Stopwatch.GetTimestamp();
            if (started >= end)
            {
                return;
            }

            try
            {
                await operation(i).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Errors are counted and shown; the caller keeps the load on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Errors++;
                FirstError ??= $"{e.GetType().Name}: {e.Message}";
                continue;
            }

            var ended = Stopwatch.GetTimestamp();
            if (started >= measureStart && ended <= end)
            {
                Latency.RecordValue(ended - started);
                Ops++;
            }
        }
    }
}
