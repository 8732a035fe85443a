using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace RedisPoolKit;

/// <summary>
/// Health of one pool. Unhealthy when the breaker is open and no socket is connected (nothing can be served);
/// Degraded at warning utilization or above on any node (the worst node's reading is reported, every node listed), while the breaker is open or half-open with sockets still
/// serving, or when callers have been waiting (admission queue or lease waiters) at every check for at least
/// <see cref="SustainedWaitThreshold"/>; Healthy otherwise.
/// </summary>
/// <remarks>
/// The sustained-wait rule keeps state between checks: register one instance per pool (a singleton), not a
/// transient, or it can never see a queue that stayed non-empty.
/// </remarks>
internal sealed class RedisPoolHealthCheck : IHealthCheck
{
    /// <summary>
    /// Callers seen waiting at this check and at every check since one at least this long ago make the pool
    /// Degraded. 10 s is one Kubernetes probe period: a burst that the queue absorbs between two probes stays
    /// Healthy, a backlog that outlives a probe does not.
    /// </summary>
    public static readonly TimeSpan SustainedWaitThreshold = TimeSpan.FromSeconds(10);

    private readonly IRedisPool _pool;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _lock = new();
    private long? _waitingSince;

    public RedisPoolHealthCheck(IRedisPool pool, TimeProvider timeProvider)
    {
        _pool = pool;
        _timeProvider = timeProvider;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        RedisPoolStatistics statistics;
        try
        {
            statistics = _pool.GetStatistics();
        }
        catch (ObjectDisposedException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"Pool '{_pool.Name}' is disposed."));
        }

        var connected = ConnectedSockets(statistics);
        var waiting = statistics.Queued + statistics.LeaseWaiters;
        var waitingFor = TrackWaiting(waiting > 0);
        var level = UtilizationLevel(statistics);
        var data = Describe(statistics, connected, level, waitingFor);
        DescribeNodes(data, _pool as IServerUtilizationSource);
        var failureStatus = context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy;

        if (statistics.CircuitState == RedisPoolCircuitState.Open && connected == 0)
        {
            return Task.FromResult(new HealthCheckResult(
                failureStatus,
                $"Pool '{_pool.Name}': the max-clients breaker is open and no socket is connected; nothing can be served until the server accepts a connection.",
                data: data));
        }

        var reasons = new List<string>(4);
        if (statistics.CircuitState == RedisPoolCircuitState.Open)
        {
            reasons.Add($"the max-clients breaker is open ({connected} sockets still serving)");
        }
        else if (statistics.CircuitState == RedisPoolCircuitState.HalfOpen)
        {
            reasons.Add("the max-clients breaker is half-open (probing the server)");
        }

        // In a cluster a full node opens its own breaker and the pool's stays closed: commands for that node's slots fail
        // fast while the others are served, which is degraded service.
        var nodesNotClosed = statistics.Nodes.Where(static n => n.CircuitState != RedisPoolCircuitState.Closed && n.Role != RedisPoolNodeRole.Sentinel).ToList();
        if (statistics.CircuitState == RedisPoolCircuitState.Closed && nodesNotClosed.Count > 0)
        {
            data["node_circuits_not_closed"] = string.Join("; ", nodesNotClosed.Select(static n => $"{n.EndPoint} {n.CircuitState}"));
            reasons.Add(string.Join(", ", nodesNotClosed.Select(static n => $"the max-clients breaker of node {n.EndPoint} is {n.CircuitState}"))
                + " (commands for its slots fail fast)");
        }

        if (level >= RedisServerUtilizationLevel.Warning && statistics.LastServerUtilization is { } reading)
        {
            var node = reading.EndPoint is { } endPoint ? $" on {endPoint}" : string.Empty;
            reasons.Add($"server utilization is {level}{node} ({reading.ConnectedClients + reading.ClusterConnections} of {reading.MaxClients} clients)");
        }

        if (waitingFor is { } duration && duration >= SustainedWaitThreshold)
        {
            reasons.Add($"{statistics.Queued} queued and {statistics.LeaseWaiters} lease waiters for {duration.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture)} s (raise 'MaxInFlight' or 'Leases.MaxLeases' if this is normal load)");
        }

        // A monitor the server's permissions turned off is not a health problem: the pool serves; only its view of
        // server utilization is missing, and the data says so instead of reporting a level it cannot know.
        var monitorNote = string.Empty;
        if ((_pool as IServerUtilizationSource)?.ServerMonitorUnavailable is { } unavailable)
        {
            data["server_monitor"] = "unavailable: " + unavailable;
            data.Remove("server_utilization_level");
            monitorNote = $" Server monitor unavailable ({unavailable}): utilization unknown.";
        }

        return Task.FromResult(reasons.Count == 0
            ? HealthCheckResult.Healthy($"Pool '{_pool.Name}': {connected} of {statistics.MaxConnections} sockets connected.{monitorNote}", data)
            : HealthCheckResult.Degraded($"Pool '{_pool.Name}': {string.Join("; ", reasons)}.", data: data));
    }

    // A multiplexer whose socket was lost keeps its budget slot while StackExchange.Redis reconnects it, but it
    // serves nothing: multiplexer sockets count as connected only while at least one multiplexer is connected.
    private static int ConnectedSockets(RedisPoolStatistics s)
    {
        var multiplexerSockets = s.Multiplexers > 0 ? Math.Max(0, s.MultiplexerSockets - s.ConnectingSockets) : 0;
        return multiplexerSockets + s.LeaseSockets;
    }

    private TimeSpan? TrackWaiting(bool waiting)
    {
        lock (_lock)
        {
            if (!waiting)
            {
                _waitingSince = null;
                return null;
            }

            _waitingSince ??= _timeProvider.GetTimestamp();
            return _timeProvider.GetElapsedTime(_waitingSince.Value);
        }
    }

    private RedisServerUtilizationLevel UtilizationLevel(RedisPoolStatistics statistics)
    {
        if (_pool is IServerUtilizationSource source)
        {
            return source.ServerUtilizationLevel;
        }

        return statistics.LastServerUtilization?.Utilization switch
        {
            >= RedisPoolDefaults.CriticalUtilization => RedisServerUtilizationLevel.Critical,
            >= RedisPoolDefaults.WarningUtilization => RedisServerUtilizationLevel.Warning,
            _ => RedisServerUtilizationLevel.Normal,
        };
    }

    /// <summary>Every node the monitor read, worst first, as "host:port Level connected/maxclients": one line per node.</summary>
    private static void DescribeNodes(Dictionary<string, object> data, IServerUtilizationSource? source)
    {
        if (source?.ServerUtilizationByNode is not { Count: > 0 } nodes)
        {
            return;
        }

        data["server_nodes"] = string.Join("; ", nodes
            .Select(node => (node.Key, node.Value, Level: source.ServerUtilizationLevelOf(node.Key)))
            .OrderByDescending(node => node.Level)
            .ThenByDescending(node => node.Value.Utilization ?? -1)
            .ThenBy(node => node.Key, StringComparer.Ordinal)
            .Select(node => string.Create(CultureInfo.InvariantCulture, $"{node.Key} {node.Level} {node.Value.ConnectedClients + node.Value.ClusterConnections}/{(node.Value.MaxClients is { } max ? max.ToString(CultureInfo.InvariantCulture) : "?")}")));
    }

    private static Dictionary<string, object> Describe(RedisPoolStatistics s, int connected, RedisServerUtilizationLevel level, TimeSpan? waitingFor)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["pool"] = s.PoolName,
            ["max_connections"] = s.MaxConnections,
            ["sockets"] = s.Sockets,
            ["sockets_connected"] = connected,
            ["sockets_connecting"] = s.ConnectingSockets,
            ["multiplexer_sockets"] = s.MultiplexerSockets,
            ["lease_sockets"] = s.LeaseSockets,
            ["multiplexers"] = s.Multiplexers,
            ["in_flight"] = s.InFlight,
            ["queued"] = s.Queued,
            ["leases_idle"] = s.LeasesIdle,
            ["leases_used"] = s.LeasesUsed,
            ["lease_waiters"] = s.LeaseWaiters,
            ["waiting_seconds"] = waitingFor?.TotalSeconds ?? 0,
            ["rejected_queue_full"] = s.RejectedQueueFull,
            ["rejected_queue_timeout"] = s.RejectedQueueTimeout,
            ["rejected_lease_timeout"] = s.RejectedLeaseTimeout,
            ["rejected_waiters_full"] = s.RejectedWaitersFull,
            ["rejected_budget_exhausted"] = s.RejectedBudgetExhausted,
            ["rejected_circuit_open"] = s.RejectedCircuitOpen,
            ["circuit_state"] = s.CircuitState.ToString(),
            ["reconnects_suppressed"] = s.ReconnectsSuppressed,
            ["server_utilization_level"] = level.ToString(),
        };

        if (s.FleetMaxConnections is { } fleetMax)
        {
            data["fleet_max_connections"] = fleetMax;
            data["fleet_share"] = s.EffectiveMaxConnections;
            data["fleet_share_changes"] = s.FleetShareChanges;
            if (s.FleetInstances is { } instances)
            {
                data["fleet_instances"] = instances;
            }
        }

        if (s.LastServerUtilization is { } reading)
        {
            if (reading.EndPoint is { } endPoint)
            {
                data["server_endpoint"] = endPoint;
            }

            data["server_connected_clients"] = reading.ConnectedClients;
            if (reading.ClusterConnections > 0)
            {
                data["server_cluster_connections"] = reading.ClusterConnections;
            }

            data["server_blocked_clients"] = reading.BlockedClients;
            data["server_rejected_connections"] = reading.RejectedConnections;
            if (reading.MaxClients is { } max)
            {
                data["server_maxclients"] = max;
            }

            if (reading.Utilization is { } utilization)
            {
                data["server_utilization"] = utilization;
            }
        }

        return data;
    }
}
