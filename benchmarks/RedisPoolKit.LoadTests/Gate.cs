using System.Globalization;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// The CI gate. It gates on what a shared 2-core machine cannot move much: per command, the bytes the pool
/// allocates beyond raw StackExchange.Redis and its CPU time over raw's, both taken from the same ABBA-ordered
/// pairs of windows. A neighbour that steals cores slows both sides' throughput, but not the bytes a command
/// allocates, and hardly the CPU our own process spends on it. The ops/s ratio is still printed, and gated only
/// against a collapse (<see cref="GateLimits.MinOpsRatio"/>), never against a few percent a busy machine causes.
/// </summary>
internal static class Gate
{
    /// <returns>The process exit code: 0 when every 64-caller scenario is within the limits (or RedisPoolKit is not implemented yet), 1 when one is not or RedisPoolKit failed.</returns>
    public static int Check(GateLimits limits, string source, IReadOnlyList<PairedRun> runs, TextWriter log)
    {
        var gated = runs.Where(r => r.Scenario.Callers == LoadOptions.FloorCallers).ToList();
        if (gated.Count == 0)
        {
            log.WriteLine($"GATE: no scenario with {LoadOptions.FloorCallers} callers was run; add {LoadOptions.FloorCallers} to --callers.");
            return 1;
        }

        var exit = 0;
        foreach (var run in gated)
        {
            var (raw, pool) = (run.Baseline, run.Candidate);
            if (!raw.Measured)
            {
                log.WriteLine($"GATE: {run.Scenario}: the raw StackExchange.Redis baseline did not run ({raw.NotAvailable}); nothing to compare with.");
                exit = 1;
                continue;
            }

            if (!pool.Measured)
            {
                if (pool.Failed)
                {
                    log.WriteLine($"GATE: {run.Scenario}: RedisPoolKit {pool.NotAvailable}.");
                    exit = 1;
                }
                else
                {
                    log.WriteLine($"GATE: {run.Scenario}: not checked, RedisPoolKit is {pool.NotAvailable}.");
                }

                continue;
            }

            var statistics = run.Statistics;
            foreach (var line in Describe(run, statistics))
            {
                log.WriteLine($"GATE: {line}");
            }

            var violations = statistics.Violations(limits);
            if (pool.Errors > 0)
            {
                log.WriteLine($"GATE: {run.Scenario}: failed: RedisPoolKit had {pool.Errors} errors (first: {pool.FirstError}).");
                exit = 1;
            }
            else if (violations.Count > 0)
            {
                foreach (var violation in violations)
                {
                    log.WriteLine($"GATE: {run.Scenario}: failed: {violation} ({source}).");
                }

                exit = 1;
            }
            else
            {
                log.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"GATE: {run.Scenario}: ok (extra B/command <= {limits.MaxExtraBytesPerOp:0}, CPU/command ratio <= {limits.MaxCpuRatio:0.00}, ops/s ratio >= {limits.MinOpsRatio:0.00}; {source})."));
            }
        }

        return exit;
    }

    /// <summary>One line per statistic, every pair's value, then the median and the spread: the figures a reviewer compares across runs.</summary>
    public static IEnumerable<string> Describe(PairedRun run, GateStatistics statistics)
    {
        var pairs = Math.Min(run.Baseline.Rounds.Count, run.Candidate.Rounds.Count);
        var baseline = run.Baseline.Rounds.Take(pairs).Select(r => r.Gate).ToList();
        var candidate = run.Candidate.Rounds.Take(pairs).Select(r => r.Gate).ToList();
        var extra = PairedRounds.Differences([.. baseline.Select(w => w.BytesPerOp)], [.. candidate.Select(w => w.BytesPerOp)]);
        var cpu = PairedRounds.Ratios([.. baseline.Select(w => w.CpuMicrosecondsPerOp)], [.. candidate.Select(w => w.CpuMicrosecondsPerOp)]);
        var ops = run.Ratios;
        var rawBytes = PairedRounds.Summarize([.. baseline.Select(w => w.BytesPerOp)]).Median;
        var rawCpu = PairedRounds.Summarize([.. baseline.Select(w => w.CpuMicrosecondsPerOp)]).Median;
        yield return Line($"{run.Scenario}: extra B/command (pool - raw, raw median {rawBytes:0} B)", extra, "0", statistics.ExtraBytesPerOp);
        yield return Line($"{run.Scenario}: CPU/command pool / raw (raw median {rawCpu:0.00} µs)", cpu, "0.000", statistics.CpuRatio);
        yield return Line($"{run.Scenario}: ops/s pool / raw", ops, "0.000", statistics.OpsRatio);

        static string Line(string name, IReadOnlyList<double> values, string format, PairedRatioSummary summary) =>
            string.Create(
                CultureInfo.InvariantCulture,
                $"{name} over {values.Count} pairs: {string.Join(' ', values.Select(v => v.ToString(format, CultureInfo.InvariantCulture)))}; median {summary.Median.ToString(format, CultureInfo.InvariantCulture)} (min {summary.Min.ToString(format, CultureInfo.InvariantCulture)}, max {summary.Max.ToString(format, CultureInfo.InvariantCulture)})");
    }
}
