namespace RedisPoolKit;

/// <summary>A snapshot of a pool: sockets by role and state, admission, leases, breaker and the last server reading.</summary>
/// <param name="PoolName">The pool.</param>
/// <param name="MaxConnections">The socket budget per endpoint.</param>
/// <param name="Sockets">Sockets the pool holds now (all roles); never above <paramref name="MaxConnections"/>.</param>
/// <param name="MultiplexerSockets">Sockets held by shared multiplexers.</param>
/// <param name="LeaseSockets">Sockets held by lease connections, idle and used.</param>
/// <param name="MonitorSockets">Sockets held for the monitor alone (0 when it reuses a multiplexer).</param>
/// <param name="ConnectingSockets">Sockets being opened now (counted in <paramref name="Sockets"/>).</param>
/// <param name="Multiplexers">Connected shared multiplexers.</param>
/// <param name="InFlight">Commands admitted and not yet completed.</param>
/// <param name="Queued">Callers waiting for admission.</param>
/// <param name="RejectedQueueFull">Callers rejected because the queue was full, since the pool started.</param>
/// <param name="RejectedQueueTimeout">Callers that timed out in the queue, since the pool started.</param>
/// <param name="LeasesIdle">Lease sockets idle in the pool.</param>
/// <param name="LeasesUsed">Lease sockets handed out.</param>
/// <param name="LeaseWaiters">Callers waiting for a lease.</param>
/// <param name="RejectedLeaseTimeout">Lease waits that timed out, since the pool started.</param>
/// <param name="RejectedWaitersFull">Lease requests rejected because the waiter list was full, since the pool started.</param>
/// <param name="RejectedBudgetExhausted">Socket creations refused by the budget, since the pool started.</param>
/// <param name="RejectedCircuitOpen">Work refused because the breaker was open, since the pool started.</param>
/// <param name="CircuitState">The breaker's state.</param>
/// <param name="ReconnectsSuppressed">StackExchange.Redis reconnect attempts the breaker held back, since the pool started.</param>
/// <param name="LastServerUtilization">The monitor's last reading, if any.</param>
public readonly record struct RedisPoolStatistics(
    string PoolName,
    int MaxConnections,
    int Sockets,
    int MultiplexerSockets,
    int LeaseSockets,
    int MonitorSockets,
    int ConnectingSockets,
    int Multiplexers,
    int InFlight,
    int Queued,
    long RejectedQueueFull,
    long RejectedQueueTimeout,
    int LeasesIdle,
    int LeasesUsed,
    int LeaseWaiters,
    long RejectedLeaseTimeout,
    long RejectedWaitersFull,
    long RejectedBudgetExhausted,
    long RejectedCircuitOpen,
    RedisPoolCircuitState CircuitState,
    long ReconnectsSuppressed,
    RedisServerUtilization? LastServerUtilization);
