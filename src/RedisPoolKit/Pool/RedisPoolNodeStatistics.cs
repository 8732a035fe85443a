namespace RedisPoolKit;

/// <summary>What a node of the deployment is to the pool.</summary>
public enum RedisPoolNodeRole
{
    /// <summary>Not known yet (no socket of the pool has reached the node).</summary>
    Unknown,

    /// <summary>A primary: a standalone server, a cluster master, or the master Sentinel names.</summary>
    Primary,

    /// <summary>A replica.</summary>
    Replica,

    /// <summary>A sentinel the pool learns the master from: its sockets there are sentinel sockets, counted against <see cref="RedisPoolOptions.MaxConnections"/> like any other.</summary>
    Sentinel,
}

/// <summary>One node the pool talks to, in <see cref="RedisPoolStatistics.Nodes"/>: its sockets and its breaker.</summary>
/// <remarks>
/// <see cref="RedisPoolOptions.MaxConnections"/> applies to each node: <see cref="Sockets"/> never exceeds it. Against a
/// standalone server there is one node; in a Redis Cluster, one per node the pool's multiplexers reach (replicas too:
/// StackExchange.Redis opens a socket to every node). Like <see cref="RedisPoolStatistics"/>, init-only and immutable.
/// </remarks>
public sealed record RedisPoolNodeStatistics
{
    /// <summary>The node's endpoint, <c>host:port</c>.</summary>
    public string EndPoint { get; init; } = string.Empty;

    /// <summary>Primary or replica, as StackExchange.Redis last saw it; <see cref="RedisPoolNodeRole.Sentinel"/> for a sentinel.</summary>
    public RedisPoolNodeRole Role { get; init; }

    /// <summary>Sockets the pool holds (or is opening) on this node, all roles; never above <see cref="RedisPoolStatistics.MaxConnections"/>.</summary>
    public int Sockets { get; init; }

    /// <summary>Sockets of shared multiplexers on this node.</summary>
    public int MultiplexerSockets { get; init; }

    /// <summary>Lease sockets on this node.</summary>
    public int LeaseSockets { get; init; }

    /// <summary>Socket creations to this node refused by its budget, since the pool started.</summary>
    public long RejectedBudgetExhausted { get; init; }

    /// <summary>This node's breaker: in a cluster each node has its own; otherwise the pool's.</summary>
    public RedisPoolCircuitState CircuitState { get; init; }

    /// <summary>The monitor's last reading of this node, if any.</summary>
    public RedisServerUtilization? Utilization { get; init; }

    /// <summary>
    /// In a cluster with <see cref="RedisPoolOptions.AdaptiveInFlight"/> on, the commands for keys on this master that
    /// may be in flight now: its own adaptive limit, between a floor (64, or half of <see cref="RedisPoolOptions.MaxInFlight"/>
    /// when that is less) and <see cref="RedisPoolOptions.MaxInFlight"/> less that floor. Null elsewhere
    /// (a replica, a standalone server, Sentinel, or a fixed limit): <see cref="RedisPoolStatistics.InFlightLimit"/> applies.
    /// </summary>
    public int? InFlightLimit { get; init; }

    /// <summary>The no-load latency this master's adaptive limit compares against; null until measured, or without a limit of its own.</summary>
    public TimeSpan? InFlightLimitBaseline { get; init; }

    /// <summary>Times this master's adaptive limit went up, since the pool found the cluster (0 without a limit of its own).</summary>
    public long InFlightLimitIncreases { get; init; }

    /// <summary>Times this master's adaptive limit went down: its commands completed above its baseline by more than the allowed queueing delay.</summary>
    public long InFlightLimitDecreases { get; init; }

    /// <summary>Commands for keys on this master admitted by its own limit and not yet completed (0 without a limit of its own).</summary>
    public int InFlight { get; init; }

    /// <summary>Commands for keys on this master waiting for its own limit (0 without one).</summary>
    public int Queued { get; init; }

    internal RedisPoolNodeStatistics WithAdmission(AdmissionLimiter? limiter) => limiter is null ? this : this with
    {
        InFlightLimit = limiter.InFlightLimit.Limit,
        InFlightLimitBaseline = limiter.InFlightLimit.Baseline,
        InFlightLimitIncreases = limiter.InFlightLimit.Increases,
        InFlightLimitDecreases = limiter.InFlightLimit.Decreases,
        InFlight = limiter.InFlight,
        Queued = limiter.Queued,
    };
}
