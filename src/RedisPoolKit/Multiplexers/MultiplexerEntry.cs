using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>One shared multiplexer of the pool, with the pool's own count of commands outstanding on it.</summary>
internal sealed class MultiplexerEntry
{
    // StackExchange.Redis caches databases 0-15; we keep our own reference to skip its lookup on the hot path.
    private readonly IDatabase _defaultDatabase;
    private int _outstanding;

    public MultiplexerEntry(PooledConnection connection)
    {
        Connection = connection;
        _defaultDatabase = connection.Multiplexer.GetDatabase();
    }

    public PooledConnection Connection { get; }

    public ConnectionMultiplexer Multiplexer => Connection.Multiplexer;

    public int Index => Connection.Index;

    public int Outstanding => Volatile.Read(ref _outstanding);

    public bool IsConnected => Connection.IsConnected;

    /// <summary>Timestamp of the last time this multiplexer was needed (outstanding above the scale-in mark).</summary>
    public long LastBusyTimestamp { get; set; }

    public IDatabase GetDatabase(int db) => db == -1 ? _defaultDatabase : Multiplexer.GetDatabase(db);

    public void Enter() => Interlocked.Increment(ref _outstanding);

    public void Exit() => Interlocked.Decrement(ref _outstanding);
}
