namespace IncidentReplay;

internal enum Stage
{
    Steady,
    Spike,
    Recovery,
    Drain,
}

/// <summary>
/// The workload both phases replay: the same services, instances, worker counts and timeline, so the only
/// difference between phase A and phase B is how the code holds its Redis connections.
/// </summary>
internal sealed class Scenario
{
    public const string QueueKey = "queue:notifications";
    public const int SpikeFactor = 10;
    public const int InstancesPerService = 2;

    public Scenario(ReplayOptions options, int maxClients)
    {
        MaxClients = maxClients;
        Duration = options.PhaseDuration;
        DrainTimeout = options.DrainTimeout;
        SteadyWorkers = Math.Max(1, (int)Math.Round(options.Scale));
        SpikeWorkers = SteadyWorkers * SpikeFactor;
    }

    public int MaxClients { get; }

    public TimeSpan Duration { get; }

    public TimeSpan DrainTimeout { get; }

    /// <summary>Workers per instance (and producers overall) in steady state.</summary>
    public int SteadyWorkers { get; }

    public int SpikeWorkers { get; }

    public TimeSpan SpikeStart => Duration * 0.3;

    public TimeSpan SpikeEnd => Duration * 0.75;

    public static readonly TimeSpan OrderThinkTime = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan CartThinkTime = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan ProducerThinkTime = TimeSpan.FromMilliseconds(50);

    public Stage StageAt(TimeSpan elapsed) =>
        elapsed < SpikeStart ? Stage.Steady : elapsed < SpikeEnd ? Stage.Spike : elapsed < Duration ? Stage.Recovery : Stage.Drain;

    public int WorkersAt(TimeSpan elapsed) => StageAt(elapsed) == Stage.Spike ? SpikeWorkers : SteadyWorkers;
}
