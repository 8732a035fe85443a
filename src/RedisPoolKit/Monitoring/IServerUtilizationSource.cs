namespace RedisPoolKit;

/// <summary>A pool that can say which utilization level its monitor is in, with the pool's own thresholds and hysteresis.</summary>
internal interface IServerUtilizationSource
{
    RedisServerUtilizationLevel ServerUtilizationLevel { get; }
}
