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

    /// <summary>Steady arrivals per second at each order-service instance (open loop: they come whether or not earlier ones finished).</summary>
    public double OrderRate => 10 * SteadyWorkers;

    /// <summary>Steady arrivals per second at each cart-service instance.</summary>
    public double CartRate => 10 * SteadyWorkers;

    /// <summary>Steady notifications per second pushed by order-service's POST /notify, over all instances.</summary>
    public double NotifyRate => 20 * SteadyWorkers;

    /// <summary>
    /// Requests one instance of a service works on at once (its web server's limit); an arrival beyond it is shed at once
    /// and counted as failed, as a saturated instance would answer 503.
    /// </summary>
    public const int MaxConcurrentPerInstance = 64;

    /// <summary>The arrival rate multiplier at <paramref name="elapsed"/>: 1, or the spike's factor.</summary>
    public double RateFactorAt(TimeSpan elapsed) => StageAt(elapsed) == Stage.Spike ? SpikeFactor : 1;

    public Stage StageAt(TimeSpan elapsed) =>
        elapsed < SpikeStart ? Stage.Steady : elapsed < SpikeEnd ? Stage.Spike : elapsed < Duration ? Stage.Recovery : Stage.Drain;

    public int WorkersAt(TimeSpan elapsed) => StageAt(elapsed) == Stage.Spike ? SpikeWorkers : SteadyWorkers;
}
