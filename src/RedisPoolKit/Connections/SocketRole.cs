namespace RedisPoolKit;

/// <summary>What a socket of the pool is for; every role draws from the one budget.</summary>
internal enum SocketRole
{
    Multiplexer,
    Lease,
    Monitor,
    Probe,
}
