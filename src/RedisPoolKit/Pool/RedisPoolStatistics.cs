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

    /// <summary>The socket budget per endpoint.</summary>
    public int MaxConnections { get; init; }

    /// <summary>Sockets the pool holds now (all roles); never above <see cref="MaxConnections"/>.</summary>
    public int Sockets { get; init; }

    /// <summary>Sockets held by shared multiplexers.</summary>
    public int MultiplexerSockets { get; init; }

    /// <summary>Sockets held by lease connections, idle and used.</summary>
    public int LeaseSockets { get; init; }

    /// <summary>Sockets being opened now (counted in <see cref="Sockets"/>).</summary>
    public int ConnectingSockets { get; init; }

    /// <summary>Connected shared multiplexers.</summary>
    public int Multiplexers { get; init; }

    /// <summary>Commands admitted and not yet completed.</summary>
    public int InFlight { get; init; }

    /// <summary>Callers waiting for admission.</summary>
    public int Queued { get; init; }

    /// <summary>Callers rejected because the queue was full, since the pool started.</summary>
    public long RejectedQueueFull { get; init; }

    /// <summary>Callers that timed out in the queue, since the pool started.</summary>
    public long RejectedQueueTimeout { get; init; }

    /// <summary>Lease sockets idle in the pool.</summary>
    public int LeasesIdle { get; init; }

    /// <summary>Lease sockets handed out.</summary>
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

    /// <summary>The monitor's last reading, if any.</summary>
    public RedisServerUtilization? LastServerUtilization { get; init; }

    /// <summary>
    /// Every node the pool talks to, with its sockets and breaker: one against a standalone server, each node of a
    /// Redis Cluster. <see cref="MaxConnections"/> caps each node's sockets; <see cref="Sockets"/> is the busiest node's.
    /// </summary>
    public IReadOnlyList<RedisPoolNodeStatistics> Nodes { get; init; } = [];
}
