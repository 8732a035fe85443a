namespace RedisPoolKit;

/// <summary>Options of the max-clients circuit breaker that gates every new socket of the pool.</summary>
public sealed class RedisPoolBreakerOptions
{
    /// <summary>How long the breaker stays open after it trips, before one half-open probe.</summary>
    /// <value>Default 5 s. Greater than zero, at most <see cref="MaxBreakDuration"/>. Each actual wait is jittered uniformly between it and a quarter more, so a fleet does not probe in lockstep and one pool never probes twice in one interval.</value>
    public TimeSpan BreakDuration { get; set; } = RedisPoolDefaults.BreakDuration;

    /// <summary>Upper bound of the break duration, which doubles after each failed probe.</summary>
    /// <value>Default 60 s. At least <see cref="BreakDuration"/>, at most 39.18:26:13.835 (jittered up to a quarter longer, a break must fit a .NET timer).</value>
    public TimeSpan MaxBreakDuration { get; set; } = RedisPoolDefaults.MaxBreakDuration;

    /// <summary>Also trip on repeated refused connections or connect timeouts, so a dead server does not cost every request a connect timeout.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool TripOnConnectFailures { get; set; } = RedisPoolDefaults.TripOnConnectFailures;

    /// <summary>Consecutive connect failures (refused, timed out) that trip the breaker when <see cref="TripOnConnectFailures"/> is on.</summary>
    /// <value>Default 3. At least 1.</value>
    public int ConnectFailureThreshold { get; set; } = RedisPoolDefaults.ConnectFailureThreshold;
}
