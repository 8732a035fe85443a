using System.Globalization;
using RedisPoolKit.LoadTests.Clients;

namespace RedisPoolKit.LoadTests;

/// <summary>The CI gate: RedisPoolKit's ops/s over raw StackExchange.Redis's at 64 callers must not fall below the committed floor.</summary>
internal static class Floor
{
    /// <returns>The process exit code: 0 when every 64-caller scenario clears the floor (or RedisPoolKit is not implemented yet), 1 when one does not or RedisPoolKit failed.</returns>
    public static int Check(double floor, IReadOnlyList<ClientResult> results, TextWriter log)
    {
        var byScenario = results.Where(r => r.Scenario.Callers == LoadOptions.FloorCallers).GroupBy(r => r.Scenario).ToList();
        if (byScenario.Count == 0)
        {
            log.WriteLine($"FLOOR: no scenario with {LoadOptions.FloorCallers} callers was run; add {LoadOptions.FloorCallers} to --callers.");
            return 1;
        }

        var exit = 0;
        foreach (var group in byScenario)
        {
            var raw = group.FirstOrDefault(r => r.Kind.Id == LoadClientKind.RawId);
            var pool = group.FirstOrDefault(r => r.Kind.Id == LoadClientKind.RedisPoolKitId);
            if (raw is null || pool is null)
            {
                log.WriteLine($"FLOOR: {group.Key}: the floor compares redispoolkit with raw; include both in --clients.");
                exit = 1;
                continue;
            }

            if (!raw.Measured)
            {
                log.WriteLine($"FLOOR: {group.Key}: the raw StackExchange.Redis baseline did not run ({raw.NotAvailable}); nothing to compare with.");
                exit = 1;
                continue;
            }

            if (!pool.Measured)
            {
                if (pool.Failed)
                {
                    log.WriteLine($"FLOOR: {group.Key}: RedisPoolKit {pool.NotAvailable}.");
                    exit = 1;
                }
                else
                {
                    log.WriteLine($"FLOOR: {group.Key}: not checked, RedisPoolKit is {pool.NotAvailable}.");
                }

                continue;
            }

            var ratio = pool.MeanOpsPerSecond / raw.MeanOpsPerSecond;
            var line = string.Create(
                CultureInfo.InvariantCulture,
                $"{group.Key}: RedisPoolKit {pool.MeanOpsPerSecond:N0} ops/s / raw {raw.MeanOpsPerSecond:N0} ops/s = {ratio:0.000}");
            if (pool.Errors > 0)
            {
                log.WriteLine($"FLOOR: {line}, but RedisPoolKit had {pool.Errors} errors (first: {pool.FirstError}).");
                exit = 1;
            }
            else if (ratio < floor)
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FLOOR: {line} is below the floor {floor:0.00} (benchmarks/floor.txt): the pool costs more than the floor allows over one plain multiplexer."));
                exit = 1;
            }
            else
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FLOOR: {line} >= {floor:0.00}: ok."));
            }
        }

        return exit;
    }
}
