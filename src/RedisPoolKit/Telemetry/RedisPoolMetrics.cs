namespace RedisPoolKit;

/// <summary>
/// The pool's instruments (Meter "RedisPoolKit"). Components call these recording methods; each is cheap
/// and does nothing when no listener is enabled.
/// </summary>
internal sealed class RedisPoolMetrics : IDisposable
{
    // PLACEHOLDER (the telemetry issue replaces the bodies; the method names are the components' contract).
#pragma warning disable CA1822, IDE0060 // Placeholder members.
    /// <summary>Time to open one socket (db.client.connection.create_time).</summary>
    public void RecordCreateTime(TimeSpan elapsed, SocketRole role) { }

    /// <summary>Time a caller waited for a lease (db.client.connection.wait_time).</summary>
    public void RecordLeaseWait(TimeSpan elapsed) { }

    /// <summary>Time a lease was held (db.client.connection.use_time).</summary>
    public void RecordLeaseUse(TimeSpan elapsed) { }

    /// <summary>A wait that timed out (db.client.connection.timeouts).</summary>
    public void RecordTimeout(RedisPoolExhaustedReason reason) { }

    /// <summary>A caller rejected (redispoolkit.commands.rejected / lease rejections), by reason.</summary>
    public void RecordRejected(RedisPoolExhaustedReason reason) { }

    /// <summary>Time a command waited for admission.</summary>
    public void RecordAdmissionWait(TimeSpan elapsed) { }

    /// <summary>A lease suspected of leaking.</summary>
    public void RecordLeakSuspected() { }

    /// <summary>A breaker transition.</summary>
    public void RecordCircuitTransition(RedisPoolCircuitState from, RedisPoolCircuitState to) { }

    public void Dispose() { }
#pragma warning restore CA1822, IDE0060
}
