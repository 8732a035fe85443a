using HdrHistogram;
using RedisPoolKit.LoadTests.Clients;

namespace RedisPoolKit.LoadTests;

/// <summary>One cell of the workload matrix: the same for every client.</summary>
internal sealed record Scenario(string Operation, int Size, int Callers)
{
    public override string ToString() => $"{Operation} {Size} B, {Callers} callers";
}

/// <summary>One client's measurement in one round.</summary>
/// <remarks>Allocation and CPU time are the whole process's over the window (the harness, the idle other client, timers), taken
/// the same way for both sides of a pair; redis-server runs in its own process and is not counted.</remarks>
internal sealed record RoundResult(double OpsPerSecond, long Ops, long AllocatedBytes, TimeSpan CpuTime, int Sockets, long Errors, string? FirstError, LongHistogram Latency)
{
    public double BytesPerOp => Ops == 0 ? 0 : (double)AllocatedBytes / Ops;

    public double CpuMicrosecondsPerOp => Ops == 0 ? 0 : CpuTime.TotalMicroseconds / Ops;

    public GateWindow Gate => new(OpsPerSecond, BytesPerOp, CpuMicrosecondsPerOp);
}

/// <summary>One client's results for one scenario, over every round.</summary>
internal sealed class ClientResult(LoadClientKind kind, Scenario scenario)
{
    public LoadClientKind Kind { get; } = kind;

    public Scenario Scenario { get; } = scenario;

    public List<RoundResult> Rounds { get; } = [];

    /// <summary>Why the client could not run (its pool throws NotImplementedException, or it failed to connect).</summary>
    public string? NotAvailable { get; set; }

    /// <summary>True when the client threw something other than NotImplementedException: a bug, not a missing feature.</summary>
    public bool Failed { get; set; }

    public bool Measured => NotAvailable is null && Rounds.Count > 0;

    public double MeanOpsPerSecond => Rounds.Count == 0 ? 0 : Rounds.Average(r => r.OpsPerSecond);

    public double MinOpsPerSecond => Rounds.Count == 0 ? 0 : Rounds.Min(r => r.OpsPerSecond);

    public double MaxOpsPerSecond => Rounds.Count == 0 ? 0 : Rounds.Max(r => r.OpsPerSecond);

    public double BytesPerOp
    {
        get
        {
            var ops = Rounds.Sum(r => r.Ops);
            return ops == 0 ? 0 : (double)Rounds.Sum(r => r.AllocatedBytes) / ops;
        }
    }

    public int Sockets => Rounds.Count == 0 ? 0 : Rounds.Max(r => r.Sockets);

    public long Errors => Rounds.Sum(r => r.Errors);

    public string? FirstError => Rounds.Select(r => r.FirstError).FirstOrDefault(e => e is not null);

    public LongHistogram Latency()
    {
        var merged = LoadRunner.NewHistogram();
        foreach (var round in Rounds)
        {
            merged.Add(round.Latency);
        }

        return merged;
    }
}

/// <summary>The CI gate's run of one scenario: two clients measured in ABBA-ordered pairs of windows (<see cref="PairedRounds"/>).</summary>
internal sealed class PairedRun(ClientResult baseline, ClientResult candidate)
{
    public ClientResult Baseline { get; } = baseline;

    public ClientResult Candidate { get; } = candidate;

    public Scenario Scenario => Baseline.Scenario;

    /// <summary>Candidate over baseline ops/s for every pair measured on both sides.</summary>
    public IReadOnlyList<double> Ratios
    {
        get
        {
            var pairs = Math.Min(Baseline.Rounds.Count, Candidate.Rounds.Count);
            return PairedRounds.Ratios(
                [.. Baseline.Rounds.Take(pairs).Select(r => r.OpsPerSecond)],
                [.. Candidate.Rounds.Take(pairs).Select(r => r.OpsPerSecond)]);
        }
    }

    /// <summary>The gate's statistics over every pair measured on both sides.</summary>
    public GateStatistics Statistics
    {
        get
        {
            var pairs = Math.Min(Baseline.Rounds.Count, Candidate.Rounds.Count);
            return GateStatistics.Of([.. Baseline.Rounds.Take(pairs).Select(r => r.Gate)], [.. Candidate.Rounds.Take(pairs).Select(r => r.Gate)]);
        }
    }

    public ClientResult Result(PairSide side) => side == PairSide.Baseline ? Baseline : Candidate;
}
