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

/// <summary>A reading of the server's client counters.</summary>
/// <param name="ConnectedClients"><c>connected_clients</c>.</param>
/// <param name="MaxClients"><c>maxclients</c> (from the server, else <see cref="RedisPoolMonitorOptions.MaxClients"/>), or <see langword="null"/> when neither gives it.</param>
/// <param name="BlockedClients"><c>blocked_clients</c>.</param>
/// <param name="RejectedConnections"><c>rejected_connections</c> since the server started.</param>
/// <param name="Timestamp">When it was read.</param>
public readonly record struct RedisServerUtilization(long ConnectedClients, long? MaxClients, long BlockedClients, long RejectedConnections, DateTimeOffset Timestamp)
{
    /// <summary><c>connected_clients / maxclients</c>, or <see langword="null"/> when <c>maxclients</c> is unknown.</summary>
    public double? Utilization => MaxClients is > 0 ? (double)ConnectedClients / MaxClients.Value : null;
}

/// <summary>Raised when the server's utilization crosses a threshold, either way.</summary>
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
    /// <summary>The band before.</summary>
    public RedisServerUtilizationLevel PreviousLevel { get; }
    /// <summary>The band now.</summary>
    public RedisServerUtilizationLevel Level { get; }
    /// <summary>The reading that crossed it.</summary>
    public RedisServerUtilization Reading { get; }
}
