namespace RedisPoolKit.Testing;

/// <summary>What a <see cref="FaultProxy"/> does to the traffic it carries.</summary>
public enum ProxyFault
{
    /// <summary>Forward faithfully (subject to <see cref="FaultProxy.Latency"/> and <see cref="FaultProxy.CloseAfter"/>).</summary>
    None,

    /// <summary>Stop reading in both directions: nothing is forwarded and TCP backpressure builds up until the fault is cleared.</summary>
    Pause,

    /// <summary>Accept, never forward: bytes in both directions are read and dropped. New connections never reach the server.</summary>
    Blackhole,

    /// <summary>Abort with a TCP RST (linger 0): existing connections at once (when applied to all), new ones right after accept.</summary>
    Reset,

    /// <summary>Stop listening, so new connections are refused by the operating system. Applied to all connections, existing ones are reset too.</summary>
    Refuse,
}

/// <summary>Which connections a <see cref="FaultProxy"/> setting applies to.</summary>
public enum FaultScope
{
    /// <summary>Existing connections now, and every connection accepted later.</summary>
    AllConnections,

    /// <summary>Only connections accepted from now on; existing ones keep their current behaviour.</summary>
    NewConnections,
}
