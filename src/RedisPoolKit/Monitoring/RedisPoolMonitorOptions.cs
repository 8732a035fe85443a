namespace RedisPoolKit;

/// <summary>Options of the server monitor that reads <c>INFO clients</c> and <c>INFO stats</c> over a socket the pool already holds.</summary>
public sealed class RedisPoolMonitorOptions
{
    /// <summary>Whether the monitor runs.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool Enabled { get; set; } = RedisPoolDefaults.MonitorEnabled;

    /// <summary>Time between two reads of the server's counters.</summary>
    /// <value>Default 15 s. Greater than zero, at most 49.17:02:47.294, the longest a .NET timer waits.</value>
    public TimeSpan PollInterval { get; set; } = RedisPoolDefaults.MonitorPollInterval;

    /// <summary><c>connected_clients / maxclients</c> at which the warning is raised.</summary>
    /// <value>Default 0.8. Greater than 0, less than 1 and less than <see cref="CriticalUtilization"/>.</value>
    public double WarningUtilization { get; set; } = RedisPoolDefaults.WarningUtilization;

    /// <summary>Utilization at which the pool stops growing and closes idle extras.</summary>
    /// <value>Default 0.95. Greater than <see cref="WarningUtilization"/>, at most 1.</value>
    public double CriticalUtilization { get; set; } = RedisPoolDefaults.CriticalUtilization;

    /// <summary>
    /// The server's <c>maxclients</c>, for servers that do not tell: used only when <c>INFO clients</c> has no
    /// <c>maxclients</c> field (Redis before 6.2) and <c>CONFIG GET maxclients</c> is refused or disabled (managed services).
    /// </summary>
    /// <value>Default <see langword="null"/>: ask the server; without an answer the monitor reports client counts but no utilization. When set, at least 1.</value>
    public int? MaxClients { get; set; }
}
