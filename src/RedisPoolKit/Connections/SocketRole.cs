namespace RedisPoolKit;

/// <summary>What a socket of the pool is for; every role draws from the one budget.</summary>
internal enum SocketRole
{
    Multiplexer,
    Lease,
    Monitor,
    Probe,

    /// <summary>A socket to a sentinel, which finds the master and hears of its failovers.</summary>
    Sentinel,
}
