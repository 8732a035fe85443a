using System.Diagnostics;
using System.Globalization;
using System.Text;
using HdrHistogram;
using StackExchange.Redis;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// The head-of-line case: one caller GETting a 1 MB value over and over beside 64 callers GETting
/// 100 B values. On one multiplexer every small reply queued behind a 1 MB reply waits for it; the pool can
/// only do better by routing small commands to a second multiplexer, so the run records how many it had.
/// </summary>
internal static class HeadOfLine
{
    public const string Name = "head-of-line";
    public const int SmallCallers = 64;
    public const int SmallSize = 100;
    public const int LargeSize = 1024 * 1024;
    public const string LargeKey = "loadtest:hol:1mb";

    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(100);
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static IReadOnlyList<Contender> Contenders { get; } =
    [
        new(
            "StackExchange.Redis (raw)",
            "one `ConnectionMultiplexer`, default options",
            static async endPoint =>
            {
                var multiplexer = await ConnectionMultiplexer.ConnectAsync(endPoint).ConfigureAwait(false);
                return new Connected(multiplexer.GetDatabase(), static () => 1, multiplexer);
            }),
        new(
            "RedisPoolKit (MaxMultiplexers = 2)",
            "`new RedisPool(new RedisPoolOptions { Configuration = endpoint, MaxMultiplexers = 2 })`, default options otherwise, `ConnectAsync()`, then `GetDatabase()`",
            static endPoint => ConnectPoolAsync(new RedisPoolOptions { Configuration = endPoint, MaxMultiplexers = 2 })),
        new(
            "RedisPoolKit (Min = Max = 2), reference",
            "as above with `MinMultiplexers = 2`: two multiplexers from the start, to show what a second one does here",
            static endPoint => ConnectPoolAsync(new RedisPoolOptions { Configuration = endPoint, MinMultiplexers = 2, MaxMultiplexers = 2 })),
    ];

    public static async Task<IReadOnlyList<HolResult>> RunAsync(LoadOptions options, string endPoint, IServer admin, IDatabase adminDatabase, TextWriter log)
    {
        await LoadRunner.PreloadAsync(adminDatabase, [SmallSize]).ConfigureAwait(false);
        await adminDatabase.StringSetAsync(LargeKey, LoadRunner.Value(LargeSize)).ConfigureAwait(false);

        var results = Contenders.Select(c => new HolResult(c)).ToList();
        for (var round = 0; round < options.Rounds; round++)
        {
            for (var i = 0; i < results.Count; i++)
            {
                var result = results[(i + round) % results.Count];
                LoadRunner.CollectGarbage();
                var baseline = await LoadRunner.CountClientsAsync(admin).ConfigureAwait(false);
                var connected = await result.Contender.ConnectAsync(endPoint).ConfigureAwait(false);
                try
                {
                    await CheckAsync(connected.Database).ConfigureAwait(false);
                    var measured = await MeasureAsync(options, connected, admin, baseline).ConfigureAwait(false);
                    result.Rounds.Add(measured);
                    log.WriteLine(string.Create(
                        Invariant,
                        $"  round {round + 1} {result.Contender.Display,-40} small GET {measured.SmallOpsPerSecond,9:N0} ops/s  p99 {LoadRunner.Milliseconds(measured.Small.GetValueAtPercentile(99)),7:0.000} ms  1 MB GET {measured.LargeOpsPerSecond,6:N1}/s  multiplexers {measured.MinMultiplexers}-{measured.MaxMultiplexers}  {measured.Sockets} sockets{(measured.Errors > 0 ? $"  {measured.Errors} errors ({measured.FirstError})" : string.Empty)}"));
                }
                finally
                {
                    await connected.Owner.DisposeAsync().ConfigureAwait(false);
                    await LoadRunner.WaitForClientsAsync(admin, baseline, log).ConfigureAwait(false);
                }
            }
        }

        await adminDatabase.KeyDeleteAsync(LargeKey).ConfigureAwait(false);
        return results;
    }

    public static string Markdown(LoadOptions options, IReadOnlyList<HolResult> results, string command, string machine)
    {
        var text = new StringBuilder()
            .AppendLine("# Head-of-line results")
            .AppendLine()
            .AppendLine(Invariant, $"Command: `{command}`")
            .AppendLine()
            .AppendLine("## Machine")
            .AppendLine()
            .AppendLine(machine)
            .AppendLine("## Method")
            .AppendLine()
            .AppendLine(Invariant, $"{options.Rounds} rounds × {options.Duration.TotalSeconds:0.#} s measured (+{options.Warmup.TotalSeconds:0.#} s warm-up) per client, one client at a time, the order rotating every round.")
            .AppendLine(Invariant, $"{SmallCallers} async callers each GET a 100 B value (1024 preloaded keys) one at a time; beside them one async caller GETs one 1 MB value (SET once beforehand) one at a time.")
            .AppendLine("Latency is each command's round trip (HdrHistogram, merged over callers and rounds). Multiplexers is `pool.GetStatistics().Multiplexers` sampled every 100 ms in the window (min-max); sockets is the most `CLIENT LIST` entries above the pre-run count at 25/50/75 % of the window.")
            .AppendLine();
        foreach (var r in results)
        {
            text.AppendLine(Invariant, $"- {r.Contender.Display}: {r.Contender.Describe}");
        }

        text.AppendLine()
            .AppendLine("## Small GETs beside the 1 MB caller")
            .AppendLine()
            .AppendLine("| Client | small GET ops/s (mean) | min – max | p50 ms | p99 ms | p99.9 ms | 1 MB GETs/s (MB/s) | 1 MB p50 ms | 1 MB p99 ms | multiplexers | sockets | errors |")
            .AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results.Where(r => r.Rounds.Count > 0))
        {
            var small = r.Merge(x => x.Small);
            var large = r.Merge(x => x.Large);
            text.AppendLine(
                Invariant,
                $"| {r.Contender.Display} | {r.Rounds.Average(x => x.SmallOpsPerSecond):N0} | {r.Rounds.Min(x => x.SmallOpsPerSecond):N0} – {r.Rounds.Max(x => x.SmallOpsPerSecond):N0} | {Ms(small, 50)} | {Ms(small, 99)} | {Ms(small, 99.9)} | {r.Rounds.Average(x => x.LargeOpsPerSecond):N1} | {Ms(large, 50)} | {Ms(large, 99)} | {r.Rounds.Min(x => x.MinMultiplexers)}-{r.Rounds.Max(x => x.MaxMultiplexers)} | {r.Rounds.Max(x => x.Sockets)} | {r.Rounds.Sum(x => x.Errors)} |");
        }

        var raw = results[0];
        text.AppendLine()
            .AppendLine("## Small-GET p99 over raw's (target ≤ 1.00)")
            .AppendLine()
            .AppendLine("| Client | merged p99 / raw | per round (same round's raw) |")
            .AppendLine("|---|---:|---|");
        foreach (var r in results.Skip(1).Where(r => r.Rounds.Count > 0 && raw.Rounds.Count > 0))
        {
            var merged = (double)r.Merge(x => x.Small).GetValueAtPercentile(99) / raw.Merge(x => x.Small).GetValueAtPercentile(99);
            var perRound = r.Rounds.Zip(raw.Rounds, (p, q) => ((double)p.Small.GetValueAtPercentile(99) / q.Small.GetValueAtPercentile(99)).ToString("0.00", Invariant));
            text.AppendLine(Invariant, $"| {r.Contender.Display} | **{merged:0.00}** | {string.Join(", ", perRound)} |");
        }

        var errors = results.SelectMany(r => r.Rounds.Select(x => (r, x.FirstError))).Where(e => e.FirstError is not null).ToList();
        if (errors.Count > 0)
        {
            text.AppendLine().AppendLine("First errors:").AppendLine();
            foreach (var (r, error) in errors)
            {
                text.AppendLine(Invariant, $"- {r.Contender.Display}: {error}");
            }
        }

        return text.ToString();
    }

    private static async Task<Connected> ConnectPoolAsync(RedisPoolOptions options)
    {
        var pool = new RedisPool(options);
        await pool.ConnectAsync().ConfigureAwait(false);
        return new Connected(pool.GetDatabase(), () => pool.GetStatistics().Multiplexers, pool);
    }

    private static async Task CheckAsync(IDatabase database)
    {
        var small = await database.StringGetAsync(LoadRunner.GetKey(SmallSize, 0)).ConfigureAwait(false);
        var large = await database.StringGetAsync(LargeKey).ConfigureAwait(false);
        if (small.Length() != SmallSize || large.Length() != LargeSize)
        {
            throw new InvalidOperationException($"GET returned {small.Length()} and {large.Length()} bytes, expected {SmallSize} and {LargeSize}.");
        }
    }

    private static async Task<HolRound> MeasureAsync(LoadOptions options, Connected connected, IServer admin, int baseline)
    {
        var database = connected.Database;
        var keys = Enumerable.Range(0, LoadRunner.GetKeyCount).Select(i => (RedisKey)LoadRunner.GetKey(SmallSize, i)).ToArray();
        var start = Stopwatch.GetTimestamp();
        var measureStart = start + LoadRunner.Ticks(options.Warmup);
        var end = measureStart + LoadRunner.Ticks(options.Duration);
        var small = Enumerable.Range(0, SmallCallers).Select(_ => new LoadCaller()).ToArray();
        var large = new LoadCaller();
        var tasks = small
            .Select((loop, index) => Task.Run(() => loop.RunAsync(i => database.StringGetAsync(keys[((index * 97) + i) & (LoadRunner.GetKeyCount - 1)]), measureStart, end)))
            .Append(Task.Run(() => large.RunAsync(_ => database.StringGetAsync(LargeKey), measureStart, end)))
            .ToArray();

        await LoadRunner.DelayUntilAsync(measureStart).ConfigureAwait(false);
        int minMultiplexers = int.MaxValue, maxMultiplexers = 0, sockets = 0;
        var nextSocketSample = 0.25;
        long now;
        while ((now = Stopwatch.GetTimestamp()) < end)
        {
            var multiplexers = connected.Multiplexers();
            minMultiplexers = Math.Min(minMultiplexers, multiplexers);
            maxMultiplexers = Math.Max(maxMultiplexers, multiplexers);
            if (now >= measureStart + ((end - measureStart) * nextSocketSample) && nextSocketSample < 1)
            {
                sockets = Math.Max(sockets, await LoadRunner.CountClientsAsync(admin).ConfigureAwait(false) - baseline);
                nextSocketSample += 0.25;
            }

            await LoadRunner.DelayUntilAsync(Math.Min(end, Stopwatch.GetTimestamp() + LoadRunner.Ticks(SampleInterval))).ConfigureAwait(false);
        }

        var all = Task.WhenAll(tasks);
        if (await Task.WhenAny(all, Task.Delay(SettleTimeout)).ConfigureAwait(false) != all)
        {
            throw new TimeoutException($"Callers were still running {SettleTimeout.TotalSeconds:0} s after the window closed: a command hangs.");
        }

        var smallLatency = LoadRunner.NewHistogram();
        foreach (var loop in small)
        {
            smallLatency.Add(loop.Latency);
        }

        var seconds = (double)(end - measureStart) / Stopwatch.Frequency;
        var errors = small.Append(large).ToList();
        return new HolRound(
            small.Sum(l => l.Ops) / seconds,
            smallLatency,
            large.Ops / seconds,
            large.Latency,
            minMultiplexers == int.MaxValue ? 0 : minMultiplexers,
            maxMultiplexers,
            sockets,
            errors.Sum(l => l.Errors),
            errors.Select(l => l.FirstError).FirstOrDefault(e => e is not null));
    }

    private static string Ms(LongHistogram histogram, double percentile) =>
        LoadRunner.Milliseconds(histogram.GetValueAtPercentile(percentile)).ToString("0.000", Invariant);
}

/// <summary>A client in the head-of-line case: how it connects and what it is.</summary>
internal sealed record Contender(string Display, string Describe, Func<string, Task<Connected>> ConnectAsync);

/// <summary>A connected client: the database the callers use, its multiplexer count now, and what to dispose.</summary>
internal sealed record Connected(IDatabase Database, Func<int> Multiplexers, IAsyncDisposable Owner);

/// <summary>One client's head-of-line measurement in one round.</summary>
internal sealed record HolRound(double SmallOpsPerSecond, LongHistogram Small, double LargeOpsPerSecond, LongHistogram Large, int MinMultiplexers, int MaxMultiplexers, int Sockets, long Errors, string? FirstError);

/// <summary>One client's head-of-line results over every round.</summary>
internal sealed class HolResult(Contender contender)
{
    public Contender Contender { get; } = contender;

    public List<HolRound> Rounds { get; } = [];

    public LongHistogram Merge(Func<HolRound, LongHistogram> pick)
    {
        var merged = LoadRunner.NewHistogram();
        foreach (var round in Rounds)
        {
            merged.Add(pick(round));
        }

        return merged;
    }
}
