namespace RedisPoolKit;

/// <summary>The defaults of <see cref="RedisPoolFleetOptions"/>; its XML docs quote these values.</summary>
internal static class RedisPoolFleetDefaults
{
    // A deploy or scale-out reaches every instance's share within one interval; one small transaction each time.
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);

    // Four intervals: one slow or lost heartbeat never drops a live instance, a dead one stops counting within 20 s.
    public static readonly TimeSpan InstanceTtl = TimeSpan.FromSeconds(20);

    /// <summary>Each wait between heartbeats is shortened by up to this fraction, never lengthened: the TTL's margin holds.</summary>
    public const double HeartbeatJitter = 0.2;

    /// <summary>The registration key's prefix; the key is <c>redispoolkit:fleet:{service:pool}</c> (one hash slot).</summary>
    public const string KeyPrefix = "redispoolkit:fleet:";
}
