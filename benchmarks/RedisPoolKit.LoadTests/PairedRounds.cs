namespace RedisPoolKit.LoadTests;

/// <summary>Which client a measured window belongs to in a paired run.</summary>
internal enum PairSide
{
    Baseline,
    Candidate,
}

/// <summary>The median of the pair ratios with their spread: what the CI gate compares with the floor.</summary>
internal readonly record struct PairedRatioSummary(double Median, double Min, double Max);

/// <summary>
/// The statistic behind the CI gate. Two clients are measured in adjacent windows (a pair) and each pair gives
/// one ratio; the order alternates A B, B A, A B, ... so a machine that slows down or speeds up steadily favours
/// neither side over two pairs, and the median ignores the pairs a neighbour's build landed on.
/// Pure so tests/RedisPoolKit.Tests can check it without a server (the file is linked there).
/// </summary>
internal static class PairedRounds
{
    /// <summary>The 2 × <paramref name="pairs"/> windows in the order they are measured.</summary>
    public static IReadOnlyList<(int Pair, PairSide Side)> Schedule(int pairs)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pairs);
        var windows = new List<(int, PairSide)>(pairs * 2);
        for (var pair = 0; pair < pairs; pair++)
        {
            var baselineFirst = pair % 2 == 0;
            windows.Add((pair, baselineFirst ? PairSide.Baseline : PairSide.Candidate));
            windows.Add((pair, baselineFirst ? PairSide.Candidate : PairSide.Baseline));
        }

        return windows;
    }

    /// <summary>Candidate over baseline, pair by pair (the i-th window of each side belongs to pair i).</summary>
    public static IReadOnlyList<double> Ratios(IReadOnlyList<double> baseline, IReadOnlyList<double> candidate)
    {
        if (baseline.Count != candidate.Count)
        {
            throw new ArgumentException($"Every pair needs both sides: {baseline.Count} baseline and {candidate.Count} candidate windows.", nameof(candidate));
        }

        return [.. baseline.Zip(candidate, (b, c) => c / b)];
    }

    /// <summary>Candidate minus baseline, pair by pair: for a per-command cost the pool adds on top of raw (bytes per command).</summary>
    public static IReadOnlyList<double> Differences(IReadOnlyList<double> baseline, IReadOnlyList<double> candidate)
    {
        if (baseline.Count != candidate.Count)
        {
            throw new ArgumentException($"Every pair needs both sides: {baseline.Count} baseline and {candidate.Count} candidate windows.", nameof(candidate));
        }

        return [.. baseline.Zip(candidate, (b, c) => c - b)];
    }

    public static PairedRatioSummary Summarize(IReadOnlyList<double> ratios)
    {
        if (ratios.Count == 0)
        {
            throw new ArgumentException("No pair was measured.", nameof(ratios));
        }

        var sorted = ratios.Order().ToArray();
        var middle = sorted.Length / 2;
        var median = sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
        return new PairedRatioSummary(median, sorted[0], sorted[^1]);
    }
}

/// <summary>What one measured window of one client gives the gate: throughput, and two per-command costs.</summary>
/// <param name="OpsPerSecond">Commands completed per second of the window.</param>
/// <param name="BytesPerOp">Bytes the whole process allocated in the window (<c>GC.GetTotalAllocatedBytes(true)</c>) per command completed.</param>
/// <param name="CpuMicrosecondsPerOp">CPU time the whole process used in the window (user + system), per command completed, in µs.</param>
internal readonly record struct GateWindow(double OpsPerSecond, double BytesPerOp, double CpuMicrosecondsPerOp);

/// <summary>
/// The gate's limits, read from <c>benchmarks/gate.txt</c>: one <c>name value</c> per line, <c>#</c> starts a comment.
/// </summary>
/// <param name="MaxExtraBytesPerOp">The most bytes per command the pool may allocate beyond raw (median of the pairs' differences).</param>
/// <param name="MaxCpuRatio">The highest pool / raw CPU time per command (median of the pairs' ratios).</param>
/// <param name="MinOpsRatio">The lowest pool / raw ops/s (median of the pairs' ratios): a collapse floor, not a speed target.</param>
internal sealed record GateLimits(double MaxExtraBytesPerOp, double MaxCpuRatio, double MinOpsRatio)
{
    public const string ExtraBytesName = "max-extra-bytes-per-command";
    public const string CpuRatioName = "max-cpu-per-command-ratio";
    public const string OpsRatioName = "min-ops-ratio";

    public static GateLimits Parse(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#', 2)[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 2 || fields[0] is not (ExtraBytesName or CpuRatioName or OpsRatioName)
                || !double.TryParse(fields[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || !(value > 0))
            {
                throw new FormatException($"Gate limits: '{line}' is not '<name> <positive number>' with name {ExtraBytesName}, {CpuRatioName} or {OpsRatioName}.");
            }

            values[fields[0]] = value;
        }

        double Get(string name) => values.TryGetValue(name, out var v) ? v : throw new FormatException($"Gate limits: {name} is missing.");
        return new GateLimits(Get(ExtraBytesName), Get(CpuRatioName), Get(OpsRatioName));
    }
}

/// <summary>The three statistics of a paired run, each the median over the pairs, with their spread.</summary>
internal sealed record GateStatistics(PairedRatioSummary ExtraBytesPerOp, PairedRatioSummary CpuRatio, PairedRatioSummary OpsRatio)
{
    public static GateStatistics Of(IReadOnlyList<GateWindow> baseline, IReadOnlyList<GateWindow> candidate) =>
        new(
            PairedRounds.Summarize(PairedRounds.Differences([.. baseline.Select(w => w.BytesPerOp)], [.. candidate.Select(w => w.BytesPerOp)])),
            PairedRounds.Summarize(PairedRounds.Ratios([.. baseline.Select(w => w.CpuMicrosecondsPerOp)], [.. candidate.Select(w => w.CpuMicrosecondsPerOp)])),
            PairedRounds.Summarize(PairedRounds.Ratios([.. baseline.Select(w => w.OpsPerSecond)], [.. candidate.Select(w => w.OpsPerSecond)])));

    /// <summary>One sentence per limit the statistics break; empty when the gate passes.</summary>
    public IReadOnlyList<string> Violations(GateLimits limits)
    {
        var violations = new List<string>();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (ExtraBytesPerOp.Median > limits.MaxExtraBytesPerOp)
        {
            violations.Add(string.Create(invariant, $"the pool allocates {ExtraBytesPerOp.Median:0} B per command more than raw (median), above {GateLimits.ExtraBytesName} {limits.MaxExtraBytesPerOp:0}"));
        }

        if (CpuRatio.Median > limits.MaxCpuRatio)
        {
            violations.Add(string.Create(invariant, $"the pool's CPU time per command is {CpuRatio.Median:0.00}× raw's (median), above {GateLimits.CpuRatioName} {limits.MaxCpuRatio:0.00}"));
        }

        if (OpsRatio.Median < limits.MinOpsRatio)
        {
            violations.Add(string.Create(invariant, $"the pool's ops/s is {OpsRatio.Median:0.00}× raw's (median), below {GateLimits.OpsRatioName} {limits.MinOpsRatio:0.00}: a collapse, not noise"));
        }

        return violations;
    }
}
