using System.Globalization;

namespace RedisPoolKit.LoadTests;

/// <summary>
/// The CI gate: the median, over ABBA-ordered pairs of windows, of RedisPoolKit's ops/s over raw
/// StackExchange.Redis's at 64 callers must not fall below the committed floor. The median of paired ratios,
/// not the ratio of means, so that one window a neighbour's build landed on cannot move the verdict.
/// </summary>
internal static class Floor
{
    /// <returns>The process exit code: 0 when every 64-caller scenario clears the floor (or RedisPoolKit is not implemented yet), 1 when one does not or RedisPoolKit failed.</returns>
    public static int Check(double floor, IReadOnlyList<PairedRun> runs, TextWriter log)
    {
        var gated = runs.Where(r => r.Scenario.Callers == LoadOptions.FloorCallers).ToList();
        if (gated.Count == 0)
        {
            log.WriteLine($"FLOOR: no scenario with {LoadOptions.FloorCallers} callers was run; add {LoadOptions.FloorCallers} to --callers.");
            return 1;
        }

        var exit = 0;
        foreach (var run in gated)
        {
            var (raw, pool) = (run.Baseline, run.Candidate);
            if (!raw.Measured)
            {
                log.WriteLine($"FLOOR: {run.Scenario}: the raw StackExchange.Redis baseline did not run ({raw.NotAvailable}); nothing to compare with.");
                exit = 1;
                continue;
            }

            if (!pool.Measured)
            {
                if (pool.Failed)
                {
                    log.WriteLine($"FLOOR: {run.Scenario}: RedisPoolKit {pool.NotAvailable}.");
                    exit = 1;
                }
                else
                {
                    log.WriteLine($"FLOOR: {run.Scenario}: not checked, RedisPoolKit is {pool.NotAvailable}.");
                }

                continue;
            }

            var ratios = run.Ratios;
            var summary = PairedRounds.Summarize(ratios);
            var line = string.Create(
                CultureInfo.InvariantCulture,
                $"{run.Scenario}: {pool.Kind.Display} / {raw.Kind.Display} over {ratios.Count} pairs: {string.Join(' ', ratios.Select(r => r.ToString("0.000", CultureInfo.InvariantCulture)))}; median {summary.Median:0.000} (min {summary.Min:0.000}, max {summary.Max:0.000})");
            if (pool.Errors > 0)
            {
                log.WriteLine($"FLOOR: {line}, but RedisPoolKit had {pool.Errors} errors (first: {pool.FirstError}).");
                exit = 1;
            }
            else if (summary.Median < floor)
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FLOOR: {line}: the median is below the floor {floor:0.00} (benchmarks/floor.txt): the pool costs more than the floor allows over one plain multiplexer."));
                exit = 1;
            }
            else
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FLOOR: {line}: median >= {floor:0.00}: ok."));
            }
        }

        return exit;
    }
}
