namespace RedisPoolKit;

/// <summary>Options of the leased connections used for blocking commands (<c>BLPOP</c>, <c>XREAD BLOCK</c>, <c>WAIT</c>, ...).</summary>
public sealed class RedisPoolLeaseOptions
{
    /// <summary>Leased sockets that may exist at once (idle and used).</summary>
    /// <value>Default 4. Zero or more (0: leasing disabled, and a lease request fails with <see cref="RedisPoolExhaustedReason.LeasingDisabled"/>).</value>
    public int MaxLeases { get; set; } = RedisPoolDefaults.MaxLeases;

    /// <summary>Idle lease sockets kept open for quick acquisition.</summary>
    /// <value>Default 0. Zero or more, at most <see cref="MaxLeases"/>.</value>
    public int MinIdle { get; set; } = RedisPoolDefaults.MinIdleLeases;

    /// <summary>How long <c>LeaseAsync</c> waits for a socket before <see cref="RedisPoolExhaustedReason.LeaseTimeout"/>.</summary>
    /// <value>Default 5 s. Greater than zero, at most 49.17:02:47.294, the longest a .NET timer waits.</value>
    public TimeSpan AcquireTimeout { get; set; } = RedisPoolDefaults.LeaseAcquireTimeout;

    /// <summary>Callers that may wait for a lease; past it they are rejected at once with <see cref="RedisPoolExhaustedReason.WaitersFull"/>.</summary>
    /// <value>Default 256. Zero or more (0: never wait for a held lease to come back; callers a socket being opened in a free slot will serve are not counted).</value>
    public int MaxWaiters { get; set; } = RedisPoolDefaults.MaxLeaseWaiters;

    /// <summary>An idle lease socket above <see cref="MinIdle"/> is closed after this long unused.</summary>
    /// <value>Default 5 min. Greater than zero.</value>
    public TimeSpan IdleTimeout { get; set; } = RedisPoolDefaults.LeaseIdleTimeout;

    /// <summary>A lease socket is closed (when next idle) after this age, minus up to 2.5 % jitter so a fleet does not reconnect together.</summary>
    /// <value>Default 30 min. Greater than zero.</value>
    public TimeSpan MaxLifetime { get; set; } = RedisPoolDefaults.LeaseMaxLifetime;

    /// <summary>A socket idle longer than this is checked with <c>PING</c> before it is handed out.</summary>
    /// <value>Default 30 s. Greater than zero.</value>
    public TimeSpan ValidateAfterIdle { get; set; } = RedisPoolDefaults.LeaseValidateAfterIdle;

    /// <summary>A lease held longer than this is logged as a suspected leak with the acquirer's stack trace.</summary>
    /// <value>Default <see langword="null"/>: leak detection off. When set, greater than zero, at most 49.17:02:47.294, the longest a .NET timer waits.</value>
    public TimeSpan? LeakDetectionThreshold { get; set; }

    /// <summary>Command timeout of lease sockets; every blocking timeout passed to a lease helper must be at least 1 s shorter.</summary>
    /// <value>Default 60 s. Greater than zero, at most 24.20:31:23.647 (StackExchange.Redis takes it in int milliseconds).</value>
    public TimeSpan CommandTimeout { get; set; } = RedisPoolDefaults.LeaseCommandTimeout;
}
