namespace RedisPoolKit;

/// <summary>A pool that can say which utilization level its monitor is in (its worst node's), with the pool's own thresholds and hysteresis, and each node's.</summary>
internal interface IServerUtilizationSource
{
    RedisServerUtilizationLevel ServerUtilizationLevel { get; }

    /// <summary>Why the pool's server monitor can take no reading (the server refuses <c>INFO</c>), or <see langword="null"/>.</summary>
    string? ServerMonitorUnavailable => null;

    /// <summary>The latest reading of every node, keyed by "host:port".</summary>
    IReadOnlyDictionary<string, RedisServerUtilization> ServerUtilizationByNode => EmptyNodes;

    /// <summary>The level of one node ("host:port").</summary>
    RedisServerUtilizationLevel ServerUtilizationLevelOf(string node) => RedisServerUtilizationLevel.Normal;

    private static readonly IReadOnlyDictionary<string, RedisServerUtilization> EmptyNodes = new Dictionary<string, RedisServerUtilization>(StringComparer.Ordinal);
}
