namespace RedisPoolKit.Testing;

/// <summary>What runs a <see cref="RedisServer"/>.</summary>
public enum RedisServerBackend
{
    /// <summary>A local <c>redis-server</c> child process, owned and stopped by pid.</summary>
    Process,

    /// <summary>A Docker container started through Testcontainers, used when no local binary exists.</summary>
    Container,
}
