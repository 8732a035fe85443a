using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using RedisPoolKit.LoadTests.Clients;

namespace RedisPoolKit.LoadTests;

/// <summary>The markdown report: the machine, the server's ceiling, every client's figures and the ratios to the baseline.</summary>
internal static class Report
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Machine(string redisVersion, string loadAtStart, string loadAtEnd)
    {
        var text = new StringBuilder();
        text.AppendLine("| | |").AppendLine("|---|---|");
        Row(text, "Date (UTC)", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm", Invariant));
        Row(text, "Cores", Environment.ProcessorCount.ToString(Invariant));
        Row(text, "CPU", CpuModel());
        Row(text, "OS", RuntimeInformation.OSDescription);
        Row(text, ".NET", $"{RuntimeInformation.FrameworkDescription}, workstation concurrent GC");
        Row(text, "Redis", $"redis-server {redisVersion}, loopback, no persistence");
        Row(text, "Clients", $"StackExchange.Redis {Version("StackExchange.Redis")}, FreeRedis {Version("FreeRedis")}, CSRedisCore {Version("CSRedisCore")}, RedisPoolKit {Version("RedisPoolKit")}");
        Row(text, "Load average (1/5/15 min)", $"{loadAtStart} at start, {loadAtEnd} at end");
        return text.ToString();
    }

    public static string LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(" / ", fields.Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    public static string Ceiling(IReadOnlyList<CeilingResult> ceiling)
    {
        var text = new StringBuilder();
        if (ceiling.Count == 0)
        {
            return "redis-benchmark was not run (not on PATH, or --no-ceiling).\n";
        }

        text.AppendLine("| Operation | Size | redis-benchmark | ops/s | p50 ms | p99 ms |").AppendLine("|---|---:|---|---:|---:|---:|");
        foreach (var c in ceiling)
        {
            text.AppendLine(Invariant, $"| {c.Operation} | {c.Size} B | `{c.Mode}` | {c.OpsPerSecond:N0} | {c.P50Milliseconds:0.000} | {c.P99Milliseconds:0.000} |");
        }

        return text.ToString();
    }

    public static string Results(IReadOnlyList<ClientResult> results)
    {
        var text = new StringBuilder();
        text.AppendLine("| Scenario | Client | ops/s (mean) | min – max | × raw | p50 ms | p99 ms | p99.9 ms | B/op | sockets | errors |")
            .AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => r.Scenario))
        {
            var raw = group.FirstOrDefault(r => r.Kind.Id == LoadClientKind.RawId && r.Measured);
            foreach (var r in group)
            {
                if (!r.Measured)
                {
                    text.AppendLine(Invariant, $"| {group.Key} | {r.Kind.Display} | {r.NotAvailable ?? "not run"} | | | | | | | | |");
                    continue;
                }

                var latency = r.Latency();
                var ratio = raw is null ? "–" : (r.MeanOpsPerSecond / raw.MeanOpsPerSecond).ToString("0.00", Invariant);
                text.AppendLine(
                    Invariant,
                    $"| {group.Key} | {r.Kind.Display} | {r.MeanOpsPerSecond:N0} | {r.MinOpsPerSecond:N0} – {r.MaxOpsPerSecond:N0} | {ratio} | {Ms(latency.GetValueAtPercentile(50))} | {Ms(latency.GetValueAtPercentile(99))} | {Ms(latency.GetValueAtPercentile(99.9))} | {r.BytesPerOp:N0} | {r.Sockets} | {r.Errors} |");
            }
        }

        var errors = results.Where(r => r.FirstError is not null).ToList();
        if (errors.Count > 0)
        {
            text.AppendLine().AppendLine("First error per client and scenario:").AppendLine();
            foreach (var r in errors)
            {
                text.AppendLine(Invariant, $"- {r.Kind.Display}, {r.Scenario}: {r.FirstError}");
            }
        }

        return text.ToString();
    }

    public static string Ratios(IReadOnlyList<ClientResult> results, IReadOnlyList<LoadClientKind> kinds)
    {
        var others = kinds.Where(k => k.Id != LoadClientKind.RawId).ToList();
        var text = new StringBuilder();
        text.Append("| Scenario | raw ops/s |");
        foreach (var k in others)
        {
            text.Append(Invariant, $" {k.Display} / raw | {k.Display} sockets |");
        }

        text.AppendLine().Append("|---|---:|");
        foreach (var _ in others)
        {
            text.Append("---:|---:|");
        }

        text.AppendLine();
        foreach (var group in results.GroupBy(r => r.Scenario))
        {
            var raw = group.FirstOrDefault(r => r.Kind.Id == LoadClientKind.RawId && r.Measured);
            text.Append(Invariant, $"| {group.Key} | {(raw is null ? "–" : raw.MeanOpsPerSecond.ToString("N0", Invariant))} |");
            foreach (var k in others)
            {
                var r = group.First(x => x.Kind.Id == k.Id);
                var ratio = r.Measured && raw is not null ? (r.MeanOpsPerSecond / raw.MeanOpsPerSecond).ToString("0.00", Invariant) : "n/a";
                text.Append(Invariant, $" {ratio} | {(r.Measured ? r.Sockets.ToString(Invariant) : "n/a")} |");
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    /// <summary>The CI gate's table: per statistic, each side's median, the pairs' median and their spread.</summary>
    public static string PairedRatios(IReadOnlyList<PairedRun> runs)
    {
        var text = new StringBuilder();
        if (runs.Count == 0)
        {
            return "No paired run.\n";
        }

        var (a, b) = (runs[0].Baseline.Kind.Display, runs[0].Candidate.Kind.Display);
        text.AppendLine(Invariant, $"| Scenario | Statistic | {a} (median) | {b} (median) | per pair: median | min – max |")
            .AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var run in runs)
        {
            if (run.Ratios.Count == 0)
            {
                text.AppendLine(Invariant, $"| {run.Scenario} | | {run.Baseline.NotAvailable ?? "–"} | {run.Candidate.NotAvailable ?? "–"} | | |");
                continue;
            }

            var s = run.Statistics;
            text.AppendLine(Invariant, $"| {run.Scenario} | B/command ({b} − {a}) | {Median(run.Baseline, r => r.BytesPerOp):0} | {Median(run.Candidate, r => r.BytesPerOp):0} | **{s.ExtraBytesPerOp.Median:0}** | {s.ExtraBytesPerOp.Min:0} – {s.ExtraBytesPerOp.Max:0} |");
            text.AppendLine(Invariant, $"| | CPU µs/command ({b} / {a}) | {Median(run.Baseline, r => r.CpuMicrosecondsPerOp):0.00} | {Median(run.Candidate, r => r.CpuMicrosecondsPerOp):0.00} | **{s.CpuRatio.Median:0.000}** | {s.CpuRatio.Min:0.000} – {s.CpuRatio.Max:0.000} |");
            text.AppendLine(Invariant, $"| | ops/s ({b} / {a}) | {Median(run.Baseline, r => r.OpsPerSecond):N0} | {Median(run.Candidate, r => r.OpsPerSecond):N0} | **{s.OpsRatio.Median:0.000}** | {s.OpsRatio.Min:0.000} – {s.OpsRatio.Max:0.000} |");
            text.AppendLine(Invariant, $"| | sockets | {run.Baseline.Sockets} | {run.Candidate.Sockets} | | |");
        }

        return text.ToString();

        static double Median(ClientResult result, Func<RoundResult, double> value) => PairedRounds.Summarize([.. result.Rounds.Select(value)]).Median;
    }

    public static string Method(LoadOptions options, IReadOnlyList<LoadClientKind> kinds)
    {
        var text = new StringBuilder();
        text.AppendLine(
                Invariant,
                $"Workload: {options.Describe()}. {(options.Quick
                    ? "Both clients are created, connected and checked first and stay connected; each is warmed up once, then the windows alternate raw, RedisPoolKit, RedisPoolKit, raw, ... with a full GC before each; each pair gives one ratio and the gate reads their median."
                    : "One client at a time, created, connected, warmed up, measured, disposed; the client order rotates every round.")}")
            .AppendLine()
            .AppendLine("Each caller is an async loop issuing one command at a time against 1024 preloaded keys (GET) or 16 keys of its own (SET).")
            .AppendLine("Latency is each command's round trip (HdrHistogram, merged over callers and rounds); B/op is `GC.GetTotalAllocatedBytes(true)` over the window divided by the commands completed in it (the whole process: client, harness, timers);")
            .AppendLine("CPU/command is `Environment.CpuUsage.TotalTime` (user + system time of this process; redis-server is another process) over the window divided by the same count;")
            .AppendLine("sockets is the most `CLIENT LIST` entries seen above the pre-run count at 25/50/75 % of the window.")
            .AppendLine();
        foreach (var k in kinds)
        {
            text.AppendLine(Invariant, $"- {k.Display}: {k.Describe}");
        }

        return text.ToString();
    }

    private static string Ms(long ticks) => LoadRunner.Milliseconds(ticks).ToString("0.000", Invariant);

    private static void Row(StringBuilder text, string name, string value) => text.AppendLine(Invariant, $"| {name} | {value} |");

    private static string Version(string assembly)
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == assembly)
            ?? TryLoad(assembly);
        var informational = loaded?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        return informational?.Split('+')[0] ?? loaded?.GetName().Version?.ToString() ?? "?";
    }

    private static Assembly? TryLoad(string name)
    {
        try
        {
            return Assembly.Load(name);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }
}
