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
