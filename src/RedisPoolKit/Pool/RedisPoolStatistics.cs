namespace RedisPoolKit;

/// <summary>A snapshot of a pool: sockets by role and state, admission, leases, breaker and the last server reading.</summary>
/// <remarks>
/// Each call to <see cref="IRedisPool.GetStatistics"/> returns a new, immutable snapshot. The properties are init-only,
/// so a test double of <see cref="IRedisPool"/> can build one (<c>new RedisPoolStatistics { PoolName = "orders", Sockets = 2 }</c>),
/// and new properties can be added without breaking code that builds or reads one.
/// </remarks>
public sealed record RedisPoolStatistics
{
    /// <summary>The pool.</summary>
    public string PoolName { get; init; } = string.Empty;

    /// <summary>The socket budget per node (<c>MaxConnections</c>): against a Redis Cluster, on each node.</summary>
    public int MaxConnections { get; init; }

    /// <summary>
    /// Sockets the pool holds now (all roles); never above <see cref="MaxConnections"/>. Against a Redis Cluster, on
    /// the node where the pool holds the most (<see cref="Nodes"/> has every node's). Sentinel sockets are in
    /// <see cref="SentinelSockets"/>.
    /// </summary>
    public int Sockets { get; init; }

    /// <summary>Sockets held by shared multiplexers, on the node <see cref="Sockets"/> counts.</summary>
    public int MultiplexerSockets { get; init; }

    /// <summary>Sockets held by lease connections, idle and used, on the node <see cref="Sockets"/> counts.</summary>
    public int LeaseSockets { get; init; }

    /// <summary>Sockets being opened now (counted in <see cref="Sockets"/>).</summary>
    public int ConnectingSockets { get; init; }

    /// <summary>Connected shared multiplexers.</summary>
    public int Multiplexers { get; init; }

    /// <summary>Commands admitted and not yet completed.</summary>
    public int InFlight { get; init; }

    /// <summary>
    /// Commands that may be in flight now: <c>MaxInFlight</c>, or with <c>AdaptiveInFlight</c> the limit found from
    /// measured latency (between its floor and <c>MaxInFlight</c>).
    /// </summary>
    public int InFlightLimit { get; init; }

    /// <summary>The no-load latency the adaptive in-flight limit compares against; null while fixed or not yet measured.</summary>
    public TimeSpan? InFlightLimitBaseline { get; init; }

    /// <summary>Times the adaptive in-flight limit went up, since the pool started.</summary>
    public long InFlightLimitIncreases { get; init; }

    /// <summary>Times the adaptive in-flight limit went down, since the pool started.</summary>
    public long InFlightLimitDecreases { get; init; }

    /// <summary>Callers waiting for admission; in a Redis Cluster those in every master's queue too (<see cref="Nodes"/> has each master's).</summary>
    public int Queued { get; init; }

    /// <summary>Callers rejected because the queue was full, since the pool started.</summary>
    public long RejectedQueueFull { get; init; }

    /// <summary>Callers that timed out in the queue, since the pool started.</summary>
    public long RejectedQueueTimeout { get; init; }

    /// <summary>Lease sockets idle in the pool; against a Redis Cluster, summed over the masters.</summary>
    public int LeasesIdle { get; init; }

    /// <summary>Lease sockets handed out; against a Redis Cluster, summed over the masters.</summary>
    public int LeasesUsed { get; init; }

    /// <summary>Callers waiting for a lease.</summary>
    public int LeaseWaiters { get; init; }

    /// <summary>Lease waits that timed out, since the pool started.</summary>
    public long RejectedLeaseTimeout { get; init; }

    /// <summary>Lease requests rejected because the waiter list was full, since the pool started.</summary>
    public long RejectedWaitersFull { get; init; }

    /// <summary>Socket creations refused by the budget, since the pool started.</summary>
    public long RejectedBudgetExhausted { get; init; }

    /// <summary>Work refused because the breaker was open, since the pool started.</summary>
    public long RejectedCircuitOpen { get; init; }

    /// <summary>The breaker's state.</summary>
    public RedisPoolCircuitState CircuitState { get; init; }

    /// <summary>StackExchange.Redis reconnect attempts the breaker held back, since the pool started.</summary>
    public long ReconnectsSuppressed { get; init; }

    /// <summary>The monitor's last reading of the worst node (the one whose level is the pool's), if any; its <see cref="RedisServerUtilization.EndPoint"/> names the node.</summary>
    public RedisServerUtilization? LastServerUtilization { get; init; }

    /// <summary>The monitor's latest reading of every node, keyed by "host:port": what the per-node utilization gauges report.</summary>
    internal IReadOnlyDictionary<string, RedisServerUtilization>? ServerUtilizationByNode { get; init; }
    /// <summary>
    /// The sockets the pool may open now: <see cref="MaxConnections"/>, or this instance's share of
    /// <c>Fleet.MaxConnections</c> while the fleet budget is on. Sockets held when it was lowered are never taken away,
    /// so <see cref="Sockets"/> may exceed it until they are released.
    /// </summary>
    public int EffectiveMaxConnections { get; init; }

    /// <summary>Live instances of this service and pool at the last fleet heartbeat, this one included; null while the fleet budget is off or before the first heartbeat.</summary>
    public int? FleetInstances { get; init; }

    /// <summary><c>Fleet.MaxConnections</c>, what all instances may hold together; null while the fleet budget is off.</summary>
    public int? FleetMaxConnections { get; init; }

    /// <summary>Times the fleet share changed <see cref="EffectiveMaxConnections"/>, since the pool started.</summary>
    public long FleetShareChanges { get; init; }
    /// <summary>
    /// Under Sentinel (<c>serviceName</c> in the configuration): the sockets open to sentinels, at most one per
    /// configured sentinel, which the pool listens to for failovers. Each takes a slot of <see cref="MaxConnections"/> on its
    /// sentinel, not on the master, and shows under that sentinel in <see cref="Nodes"/>; <see cref="Sockets"/> leaves them out.
    /// </summary>
    public int SentinelSockets { get; init; }

    /// <summary>Under Sentinel: the master the pool's sockets open to ("host:port"), once learned; otherwise null.</summary>
    public string? SentinelMaster { get; init; }
    /// <summary>
    /// Every node the pool talks to, with its sockets and breaker: one against a standalone server, each node of a
    /// Redis Cluster. <see cref="MaxConnections"/> caps each node's sockets; <see cref="Sockets"/> is the busiest node's.
    /// </summary>
    public IReadOnlyList<RedisPoolNodeStatistics> Nodes { get; init; } = [];
}
