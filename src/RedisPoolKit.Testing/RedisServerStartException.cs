namespace RedisPoolKit.Testing;

/// <summary>Why a <see cref="RedisServer"/> could not be started.</summary>
public enum RedisServerStartFailure
{
    /// <summary>No <c>redis-server</c> binary was found and no Docker engine answered.</summary>
    NotFound,

    /// <summary>The requested port was already taken by another process.</summary>
    PortInUse,

    /// <summary>The server process exited before it answered <c>PING</c>.</summary>
    ExitedAtStart,

    /// <summary>The server kept running but never answered <c>PING</c> within <see cref="RedisServerOptions.StartTimeout"/>.</summary>
    NotAnswering,

    /// <summary>A <see cref="RedisCluster"/> or <see cref="RedisSentinelSet"/> started its processes but did not reach the state it waits for (slots covered, sentinels agreeing, a failover done) in time.</summary>
    NotFormed,
}

/// <summary>Thrown when a <see cref="RedisServer"/> cannot be started; the message carries the server's log tail.</summary>
public sealed class RedisServerStartException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RedisServerStartException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RedisServerStartException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public RedisServerStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a classified failure.</summary>
    public RedisServerStartException(RedisServerStartFailure failure, string message, string? logTail = null, Exception? innerException = null)
        : base(failure == RedisServerStartFailure.NotFound ? message : WithLog(message, logTail), innerException)
    {
        Failure = failure;
        LogTail = logTail ?? string.Empty;
    }

    /// <summary>What went wrong.</summary>
    public RedisServerStartFailure Failure { get; }

    /// <summary>The last lines the server wrote (its log file and console), empty when it wrote nothing.</summary>
    public string LogTail { get; } = string.Empty;

    private static string WithLog(string message, string? logTail) =>
        string.IsNullOrWhiteSpace(logTail)
            ? message + Environment.NewLine + "(the server wrote no log)"
            : message + Environment.NewLine + "Server log tail:" + Environment.NewLine + logTail;
}
