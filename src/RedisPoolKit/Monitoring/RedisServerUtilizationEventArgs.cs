namespace RedisPoolKit;

/// <summary>Utilization band of the server, from <c>connected_clients / maxclients</c>.</summary>
public enum RedisServerUtilizationLevel
{
    /// <summary>Below the warning threshold.</summary>
    Normal,
    /// <summary>At or above <see cref="RedisPoolMonitorOptions.WarningUtilization"/>.</summary>
    Warning,
    /// <summary>At or above <see cref="RedisPoolMonitorOptions.CriticalUtilization"/>: the pool stops growing.</summary>
    Critical,
}

/// <summary>A reading of one server's client counters (one node of a cluster).</summary>
/// <param name="ConnectedClients"><c>connected_clients</c>.</param>
/// <param name="MaxClients"><c>maxclients</c> (from the server, else <see cref="RedisPoolMonitorOptions.MaxClients"/>), or <see langword="null"/> when neither gives it.</param>
/// <param name="BlockedClients"><c>blocked_clients</c>.</param>
/// <param name="RejectedConnections"><c>rejected_connections</c> since the server started.</param>
/// <param name="Timestamp">When it was read.</param>
public readonly record struct RedisServerUtilization(long ConnectedClients, long? MaxClients, long BlockedClients, long RejectedConnections, DateTimeOffset Timestamp)
{
    /// <summary>
    /// <c>(connected_clients + cluster_connections) / maxclients</c>: the share of the limit in use, or <see langword="null"/>
    /// when <c>maxclients</c> is unknown. Outside a cluster <see cref="ClusterConnections"/> is 0.
    /// </summary>
    public double? Utilization => MaxClients is > 0 ? (double)(ConnectedClients + ClusterConnections) / MaxClients.Value : null;

    /// <summary>
    /// <c>cluster_connections</c>: a cluster node's links to the other nodes. A cluster node counts them against
    /// <c>maxclients</c> too (it refuses a client with "max number of clients + cluster connections reached"), so
    /// <see cref="Utilization"/> includes them. 0 outside a cluster.
    /// </summary>
    public long ClusterConnections { get; init; }

    /// <summary>The node it was read from, as "host:port"; <see langword="null"/> for a reading not taken by a pool's monitor.</summary>
    public string? EndPoint { get; init; }
}

/// <summary>Raised when a server's utilization crosses a threshold, either way; in a cluster, one node's, named by <see cref="EndPoint"/>.</summary>
public sealed class RedisServerUtilizationEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public RedisServerUtilizationEventArgs(string poolName, RedisServerUtilizationLevel previousLevel, RedisServerUtilizationLevel level, RedisServerUtilization reading)
    {
        PoolName = poolName;
        PreviousLevel = previousLevel;
        Level = level;
        Reading = reading;
    }

    /// <summary>The pool whose monitor read it.</summary>
    public string PoolName { get; }
    /// <summary>The node's band before.</summary>
    public RedisServerUtilizationLevel PreviousLevel { get; }
    /// <summary>The node's band now. The pool's own level is its worst node's.</summary>
    public RedisServerUtilizationLevel Level { get; }
    /// <summary>The reading that crossed it.</summary>
    public RedisServerUtilization Reading { get; }
    /// <summary>The node whose level changed, as "host:port" (the reading's <see cref="RedisServerUtilization.EndPoint"/>).</summary>
    public string? EndPoint => Reading.EndPoint;
}
