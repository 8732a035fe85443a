using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The pool's drop-in <see cref="IConnectionMultiplexer"/> (<c>IRedisPool.Multiplexer</c>). Members without
/// pool semantics are generated (RedisPoolKit.Generators) and forward to the primary multiplexer.
/// </summary>
[GenerateForwarding(typeof(IConnectionMultiplexer), nameof(Primary))]
internal sealed partial class PooledMultiplexer : IConnectionMultiplexer
{
    private readonly Func<IConnectionMultiplexer> _primary;
    private readonly Func<int, object?, IDatabase> _getDatabase;

    public PooledMultiplexer(Func<IConnectionMultiplexer> primary, Func<int, object?, IDatabase> getDatabase)
    {
        _primary = primary;
        _getDatabase = getDatabase;
    }

    // Read on every call: the primary may be replaced when it fails for good.
    private IConnectionMultiplexer Primary => _primary();

    public IDatabase GetDatabase(int db = -1, object? asyncState = null) => _getDatabase(db, asyncState);

    // Callers (caches, DI containers) dispose what they are handed; the pool outlives them (DESIGN.md 2.10).
    public void Dispose()
    {
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public void Close(bool allowCommandsToComplete = true)
    {
    }

    public Task CloseAsync(bool allowCommandsToComplete = true) => Task.CompletedTask;
}
