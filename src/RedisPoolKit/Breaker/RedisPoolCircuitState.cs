namespace RedisPoolKit;

/// <summary>State of the max-clients breaker. Named to avoid StackExchange.Redis 3.x's experimental <c>CircuitState</c>.</summary>
public enum RedisPoolCircuitState
{
    /// <summary>New sockets may be opened.</summary>
    Closed,
    /// <summary>No new socket is opened; work that needs one fails fast with <see cref="RedisPoolCircuitOpenException"/>.</summary>
    Open,
    /// <summary>One probe socket is being tried; its success closes the breaker.</summary>
    HalfOpen,
}

/// <summary>Raised when the breaker changes state.</summary>
public sealed class RedisPoolCircuitStateChangedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public RedisPoolCircuitStateChangedEventArgs(string poolName, RedisPoolCircuitState previousState, RedisPoolCircuitState state, string reason, TimeSpan? retryAfter)
    {
        PoolName = poolName;
        PreviousState = previousState;
        State = state;
        Reason = reason;
        RetryAfter = retryAfter;
    }

    /// <summary>The pool whose breaker changed.</summary>
    public string PoolName { get; }
    /// <summary>The state before.</summary>
    public RedisPoolCircuitState PreviousState { get; }
    /// <summary>The state now.</summary>
    public RedisPoolCircuitState State { get; }
    /// <summary>Why, in words fit for a log line.</summary>
    public string Reason { get; }
    /// <summary>When opened: the time until the half-open probe.</summary>
    public TimeSpan? RetryAfter { get; }
}
