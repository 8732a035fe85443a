namespace RedisPoolKit;

/// <summary>A pool that can say which utilization level its monitor is in, with the pool's own thresholds and hysteresis.</summary>
internal interface IServerUtilizationSource
{
    RedisServerUtilizationLevel ServerUtilizationLevel { get; }

    /// <summary>Why the pool's server monitor can take no reading (the server refuses <c>INFO</c>), or <see langword="null"/>.</summary>
    string? ServerMonitorUnavailable => null;
}
