namespace RedisPoolKit;

/// <summary>Where the instances of a fleet find each other: the server's registration set, or a fake in unit tests.</summary>
internal interface IFleetRegistry
{
    /// <summary>Renews this instance's registration, drops expired ones and returns the live instances, in one round trip.</summary>
    /// <returns>The live instance ids, this one included; null when no socket of the pool is connected to send it on.</returns>
    Task<IReadOnlyList<string>?> HeartbeatAsync(CancellationToken cancellationToken);

    /// <summary>Removes this instance's registration (disposal), so the others grow back at their next heartbeat.</summary>
    Task DeregisterAsync(CancellationToken cancellationToken);
}
