using StackExchange.Redis;

namespace RedisPoolKit;

internal enum LeaseEntryState
{
    Idle,
    Leased,
    Closing,
    Closed,
}

/// <summary>
/// One socket of the lease pool, its timestamps (<see cref="LeaseClock"/> units) and the state of
/// its current lease. A <see cref="RedisLease"/> is only a handle (this entry and a lease id): whatever a lease
/// needs beyond that lives here, valid while <see cref="LeaseId"/> still names that lease.
/// </summary>
internal sealed class LeaseEntry(LeasePool pool, ILeaseConnection connection, int index, long createdTimestamp, TimeSpan lifetime, long expiresAt)
{
    /// <summary>
    /// The id of the lease holding this socket; 0 once it was disposed. Set under the bag's lock when the entry is
    /// handed out; cleared by the one <see cref="RedisLease.Dispose"/> whose compare-exchange wins, so a stale
    /// handle (an older id) can neither return nor use the socket of a later lease.
    /// </summary>
    public long LeaseId;

    /// <summary>The id of the lease running a blocking helper on this socket, 0 when none does.</summary>
    public long BlockingLeaseId;

    private long _redirectSaidFor;

    /// <summary>
    /// True the first time lease <paramref name="leaseId"/> follows a redirect, false after: a worker whose slot moved
    /// for good follows one per command, and the log says it once per lease.
    /// </summary>
    public bool FirstRedirectOf(long leaseId) => Interlocked.Exchange(ref _redirectSaidFor, leaseId) != leaseId;

    /// <summary>Why the current lease's socket must not be reused (a blocking command failed or was not proven unblocked).</summary>
    public string? BrokenReason;

    /// <summary>The broken socket is closed as designed (unblocking is not permitted), said once per pool already: retired quietly, not discarded with a warning.</summary>
    public bool BrokenByDesign;

    /// <summary>
    /// Why this socket's server may no longer be written to (it is, or is about to stop being, the master); null while
    /// it may. The lease holding it gets a <see cref="RedisPoolException"/> with this text on its next command, and
    /// the socket is closed when it comes back.
    /// </summary>
    public string? RetiredReason;

    public LeasePool Pool { get; } = pool;

    public ILeaseConnection Connection { get; } = connection;

    public int Index { get; } = index;

    /// <summary>Max lifetime with this entry's jitter applied.</summary>
    public TimeSpan Lifetime { get; } = lifetime;

    /// <summary>The timestamp at which <see cref="Lifetime"/> is reached.</summary>
    public long ExpiresAt { get; } = expiresAt;

    public long IdleSince { get; set; } = createdTimestamp;

    public LeaseEntryState State { get; set; }

    /// <summary>When the current lease was acquired.</summary>
    public long LeasedAt { get; set; }

    /// <summary>The order in which the current lease's caller started waiting (0: served without waiting).</summary>
    public long WaitTicket { get; set; }

    /// <summary>The order in which waiters were served (0: served without waiting).</summary>
    public long HandOff { get; set; }

    /// <summary>The current lease's <see cref="IDatabase"/> wrapper, made on first use and dropped on return; a later lease makes its own.</summary>
    public ILeaseDatabase? Database { get; set; }

    /// <summary>The current lease's leak watch; only when <see cref="RedisPoolLeaseOptions.LeakDetectionThreshold"/> is set.</summary>
    public LeakWatch? Leak { get; set; }

    /// <summary>Whether the socket has reached its <see cref="Lifetime"/> at <paramref name="now"/>: it is closed rather than handed out or kept idle.</summary>
    public bool IsExpiredAt(long now) => now >= ExpiresAt;

    /// <summary>Whether the lease <paramref name="leaseId"/> still holds this socket.</summary>
    public bool IsHeldBy(long leaseId) => Volatile.Read(ref LeaseId) == leaseId;

    /// <summary>
    /// Throws what a command of lease <paramref name="leaseId"/> must get instead of this socket:
    /// <see cref="ObjectDisposedException"/> once the lease was returned (a later lease may hold the socket), or the
    /// <see cref="RetiredReason"/>.
    /// </summary>
    public void ThrowIfUnusableBy(long leaseId)
    {
        if (!IsHeldBy(leaseId))
        {
            var description = $"lease {leaseId} ({Connection.Name})";
            throw new ObjectDisposedException(description, $"The {description} was disposed: its connection went back to the pool. Take a new lease.");
        }

        ThrowIfRetired(leaseId);
    }

    /// <summary>Throws the <see cref="RetiredReason"/>, if any, for the lease <paramref name="leaseId"/>.</summary>
    public void ThrowIfRetired(long leaseId)
    {
        if (Volatile.Read(ref RetiredReason) is { } reason)
        {
            throw new RedisPoolException($"Lease {leaseId} ({Connection.Name}) can no longer send commands: {reason}. The command was not sent; dispose the lease and take a new one.");
        }
    }
}
