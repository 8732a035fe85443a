namespace RedisPoolKit;

/// <summary>
/// One socket budget shared by every instance of a service: each instance registers itself on the server it uses,
/// counts the live instances of its <see cref="RedisPoolOptions.ServiceName"/> and pool <see cref="RedisPoolOptions.Name"/>,
/// and holds at most its share of <see cref="MaxConnections"/>. See docs/Fleet.md.
/// </summary>
public sealed class RedisPoolFleetOptions
{
    /// <summary>Whether the instance registers itself and holds to its share of <see cref="MaxConnections"/>.</summary>
    /// <value>Default <see langword="false"/>: the pool holds to its own <see cref="RedisPoolOptions.MaxConnections"/> alone.</value>
    public bool Enabled { get; set; }

    /// <summary>
    /// The sockets every instance of this service and pool may hold on the server together. Each instance's share is
    /// this divided by the live instances, never above its own <see cref="RedisPoolOptions.MaxConnections"/> and never
    /// below what it needs to work: its <see cref="RedisPoolOptions.MinMultiplexers"/> sockets plus one lease socket
    /// where leasing is on.
    /// </summary>
    /// <value>No default: required when <see cref="Enabled"/>, and at least that minimum of one instance.</value>
    public int MaxConnections { get; set; }

    /// <summary>
    /// How often the instance renews its registration and reads the live instances. A change in the number of
    /// instances reaches every instance's share within one interval.
    /// </summary>
    /// <value>Default 5 s. Greater than zero, at most 49.17:02:47.294, the longest a .NET timer waits. Each wait is shortened by up to a fifth at random, so a fleet started together does not beat together.</value>
    public TimeSpan HeartbeatInterval { get; set; } = RedisPoolFleetDefaults.HeartbeatInterval;

    /// <summary>
    /// How long a registration lives without renewal: an instance that stops without disposing its pool (killed, or
    /// cut off from the server) stops counting after this long, and the others grow back into its share.
    /// </summary>
    /// <value>Default 20 s. At least twice <see cref="HeartbeatInterval"/>, so one late or lost heartbeat never drops a live instance; at most 49.17:02:47.294.</value>
    public TimeSpan InstanceTtl { get; set; } = RedisPoolFleetDefaults.InstanceTtl;
}
