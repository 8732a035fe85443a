namespace RedisPoolKit;

/// <summary>
/// Names of every instrument, tag and span RedisPoolKit emits. The <c>db.client.connection.*</c> names follow the
/// OpenTelemetry database connection-pool conventions exactly; everything Redis-specific lives under <c>redispoolkit.</c>.
/// </summary>
internal static class RedisPoolInstrumentNames
{
    public const string MeterName = "RedisPoolKit";
    public const string ActivitySourceName = "RedisPoolKit";

    public const string ConnectionCount = "db.client.connection.count";
    public const string ConnectionMax = "db.client.connection.max";
    public const string ConnectionIdleMin = "db.client.connection.idle.min";
    public const string ConnectionIdleMax = "db.client.connection.idle.max";
    public const string ConnectionPendingRequests = "db.client.connection.pending_requests";
    public const string ConnectionTimeouts = "db.client.connection.timeouts";
    public const string ConnectionCreateTime = "db.client.connection.create_time";
    public const string ConnectionWaitTime = "db.client.connection.wait_time";
    public const string ConnectionUseTime = "db.client.connection.use_time";

    public const string CommandsInFlight = "redispoolkit.commands.in_flight";
    public const string CommandsQueued = "redispoolkit.commands.queued";
    public const string CommandsFailed = "redispoolkit.commands.failed";
    public const string InFlightLimit = "redispoolkit.commands.in_flight_limit";
    public const string InFlightLimitBaseline = "redispoolkit.commands.in_flight_limit.baseline";
    public const string InFlightLimitChanges = "redispoolkit.commands.in_flight_limit.changes";
    public const string Rejected = "redispoolkit.rejected";
    public const string CircuitState = "redispoolkit.circuit.state";
    public const string CircuitTransitions = "redispoolkit.circuit.transitions";
    public const string ReconnectsSuppressed = "redispoolkit.reconnects.suppressed";
    public const string Multiplexers = "redispoolkit.multiplexers";
    public const string LeaksSuspected = "redispoolkit.leases.leaks_suspected";
    public const string UnblockUnavailable = "redispoolkit.leases.unblock_unavailable";
    public const string ServerConnectedClients = "redispoolkit.server.connected_clients";
    public const string ServerMaxClients = "redispoolkit.server.maxclients";
    public const string ServerUtilization = "redispoolkit.server.utilization";
    public const string ServerRejectedConnections = "redispoolkit.server.rejected_connections";
    public const string ServerBlockedClients = "redispoolkit.server.blocked_clients";
    public const string FleetInstances = "redispoolkit.fleet.instances";
    public const string FleetConnectionLimit = "redispoolkit.fleet.connection.limit";
    public const string FleetShareChanges = "redispoolkit.fleet.share.changes";

    public const string PoolNameTag = "db.client.connection.pool.name";
    public const string StateTag = "db.client.connection.state";
    public const string StateIdle = "idle";
    public const string StateUsed = "used";
    public const string ReasonTag = "redispoolkit.rejection.reason";
    public const string RoleTag = "redispoolkit.socket.role";
    public const string CircuitStateTag = "redispoolkit.circuit.state";
    public const string CircuitFromTag = "redispoolkit.circuit.from";
    public const string CircuitToTag = "redispoolkit.circuit.to";
    public const string ErrorTypeTag = "error.type";
    public const string LimitDirectionTag = "redispoolkit.limit.direction";
    public const string LimitIncrease = "increase";
    public const string LimitDecrease = "decrease";

    public const string LeaseWaitActivity = "redispoolkit.lease.wait";
    public const string AdmissionWaitActivity = "redispoolkit.admission.wait";
    public const string SocketCreateActivity = "redispoolkit.socket.create";
    public const string CircuitTransitionEvent = "redispoolkit.circuit.transition";
    public const string ServerAddressTag = "server.address";
    public const string ServerPortTag = "server.port";

    public static string Format(RedisPoolExhaustedReason reason) => reason switch
    {
        RedisPoolExhaustedReason.QueueFull => "queue_full",
        RedisPoolExhaustedReason.QueueTimeout => "queue_timeout",
        RedisPoolExhaustedReason.LeaseTimeout => "lease_timeout",
        RedisPoolExhaustedReason.WaitersFull => "waiters_full",
        RedisPoolExhaustedReason.BudgetExhausted => "budget_exhausted",
        RedisPoolExhaustedReason.LeasingDisabled => "leasing_disabled",
        _ => "other",
    };

    public const string CircuitOpenReason = "circuit_open";

    public static string Format(RedisPoolCircuitState state) => state switch
    {
        RedisPoolCircuitState.Closed => "closed",
        RedisPoolCircuitState.Open => "open",
        RedisPoolCircuitState.HalfOpen => "half_open",
        _ => "unknown",
    };

    internal static string Format(SocketRole role) => role switch
    {
        SocketRole.Multiplexer => "multiplexer",
        SocketRole.Lease => "lease",
        SocketRole.Monitor => "monitor",
        SocketRole.Probe => "probe",
        SocketRole.Sentinel => "sentinel",
        _ => "unknown",
    };
}
