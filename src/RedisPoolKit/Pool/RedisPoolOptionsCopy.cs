namespace RedisPoolKit;

/// <summary>Deep copies of the options, so a pool never sees later changes to the object it was built from.</summary>
internal static class RedisPoolOptionsCopy
{
    public static RedisPoolOptions Clone(RedisPoolOptions source) => new()
    {
        Name = source.Name,
        Configuration = source.Configuration,
        ConfigureOptions = source.ConfigureOptions,
        ServiceName = source.ServiceName,
        InstanceId = source.InstanceId,
        MaxConnections = source.MaxConnections,
        MinMultiplexers = source.MinMultiplexers,
        MaxMultiplexers = source.MaxMultiplexers,
        MaxInFlight = source.MaxInFlight,
        AdaptiveInFlight = source.AdaptiveInFlight,
        MaxQueueLength = source.MaxQueueLength,
        QueueTimeout = source.QueueTimeout,
        ConnectTimeout = source.ConnectTimeout,
        ShutdownGracePeriod = source.ShutdownGracePeriod,
        RequireConnectionOnStart = source.RequireConnectionOnStart,
        SharedSubscriptionConnection = source.SharedSubscriptionConnection,
        Leases = new RedisPoolLeaseOptions
        {
            MaxLeases = source.Leases.MaxLeases,
            MinIdle = source.Leases.MinIdle,
            AcquireTimeout = source.Leases.AcquireTimeout,
            MaxWaiters = source.Leases.MaxWaiters,
            IdleTimeout = source.Leases.IdleTimeout,
            MaxLifetime = source.Leases.MaxLifetime,
            ValidateAfterIdle = source.Leases.ValidateAfterIdle,
            LeakDetectionThreshold = source.Leases.LeakDetectionThreshold,
            CommandTimeout = source.Leases.CommandTimeout,
        },
        Breaker = new RedisPoolBreakerOptions
        {
            BreakDuration = source.Breaker.BreakDuration,
            MaxBreakDuration = source.Breaker.MaxBreakDuration,
            TripOnConnectFailures = source.Breaker.TripOnConnectFailures,
            ConnectFailureThreshold = source.Breaker.ConnectFailureThreshold,
        },
        Monitor = new RedisPoolMonitorOptions
        {
            Enabled = source.Monitor.Enabled,
            PollInterval = source.Monitor.PollInterval,
            WarningUtilization = source.Monitor.WarningUtilization,
            CriticalUtilization = source.Monitor.CriticalUtilization,
            MaxClients = source.Monitor.MaxClients,
        },
        Fleet = new RedisPoolFleetOptions
        {
            Enabled = source.Fleet.Enabled,
            MaxConnections = source.Fleet.MaxConnections,
            HeartbeatInterval = source.Fleet.HeartbeatInterval,
            InstanceTtl = source.Fleet.InstanceTtl,
        },
    };
}
