using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>Base of every exception RedisPoolKit raises itself; a <see cref="RedisException"/>, so existing handlers still catch it.</summary>
public class RedisPoolException : RedisException
{
    /// <summary>Creates the exception.</summary>
    public RedisPoolException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public RedisPoolException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>What was full when a <see cref="RedisPoolExhaustedException"/> was raised.</summary>
public enum RedisPoolExhaustedReason
{
    /// <summary>The admission queue held <see cref="RedisPoolOptions.MaxQueueLength"/> callers already.</summary>
    QueueFull,
    /// <summary>A caller waited <see cref="RedisPoolOptions.QueueTimeout"/> for admission.</summary>
    QueueTimeout,
    /// <summary>A caller waited <see cref="RedisPoolLeaseOptions.AcquireTimeout"/> for a lease.</summary>
    LeaseTimeout,
    /// <summary><see cref="RedisPoolLeaseOptions.MaxWaiters"/> callers were waiting for a lease already.</summary>
    WaitersFull,
    /// <summary>A new socket was needed and <see cref="RedisPoolOptions.MaxConnections"/> were open already.</summary>
    BudgetExhausted,
    /// <summary>A lease was asked for while <see cref="RedisPoolLeaseOptions.MaxLeases"/> is 0: leasing is disabled.</summary>
    LeasingDisabled,
}

/// <summary>The pool refused work because a bound was reached; the message names the bound, the counts and the option to raise.</summary>
public sealed class RedisPoolExhaustedException : RedisPoolException
{
    /// <summary>Creates the exception.</summary>
    public RedisPoolExhaustedException(RedisPoolExhaustedReason reason, string message, Exception? innerException = null)
        : base(message, innerException) => Reason = reason;

    /// <summary>What was full.</summary>
    public RedisPoolExhaustedReason Reason { get; }
}

/// <summary>Work needed a new socket while the max-clients breaker was open; existing sockets keep serving.</summary>
public sealed class RedisPoolCircuitOpenException : RedisPoolException
{
    /// <summary>Creates the exception; <paramref name="innerException"/> is the last classified failure.</summary>
    public RedisPoolCircuitOpenException(string message, TimeSpan retryAfter, Exception? innerException)
        : base(message, innerException) => RetryAfter = retryAfter;

    /// <summary>When the breaker will let one probe through.</summary>
    public TimeSpan RetryAfter { get; }
}
