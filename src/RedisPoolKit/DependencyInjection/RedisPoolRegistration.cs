namespace RedisPoolKit;

/// <summary>
/// Marks a pool registered in a service collection, so a second registration of the same name fails at
/// registration time instead of silently replacing the first (keyed registrations are last-wins).
/// </summary>
internal sealed class RedisPoolRegistration(string name)
{
    public string Name { get; } = name;
}

/// <summary>Marks the drop-in <see cref="StackExchange.Redis.IConnectionMultiplexer"/> of a pool, so adding it twice is harmless.</summary>
internal sealed class RedisPoolMultiplexerRegistration(string name)
{
    public string Name { get; } = name;
}
