using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>One shared multiplexer of the pool, with the pool's own count of commands outstanding on it.</summary>
internal sealed class MultiplexerEntry
{
    // StackExchange.Redis caches databases 0-15; we keep our own reference to skip its lookup on the hot path.
    private readonly IDatabase _defaultDatabase;
    private int _outstanding;
    private int _retired;
    private TaskCompletionSource? _drained;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

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

    /// <summary>True once the member has left the set: a command counted on it after that must go elsewhere.</summary>
    public bool IsRetired => Volatile.Read(ref _retired) != 0;

    public void Enter() => Interlocked.Increment(ref _outstanding);

    /// <summary>
    /// Marks the member as leaving, with a full fence before the caller reads <see cref="Outstanding"/>: a command
    /// increments the count (a full fence too) before it reads <see cref="IsRetired"/>, so of the two, at least
    /// one sees the other, and no command is left on a member that is being closed.
    /// </summary>
    public void MarkRetired()
    {
        // Published by the fence of the exchange: whoever sees the member retired sees its drain signal.
        _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _retired, 1);
    }

    /// <summary>
    /// After <see cref="MarkRetired"/>: completes once no command is outstanding. The same two fences decide it: the
    /// last command out sees the member retired and signals, or the retiring caller sees no command left.
    /// </summary>
    public Task Drained => Outstanding == 0 ? Task.CompletedTask : _drained?.Task ?? throw new InvalidOperationException("The member has not been retired.");

    /// <summary>Completes once the member's multiplexer is disposed: nothing queued on it can reach a server after that.</summary>
    public Task Closed => _closed.Task;

    public void MarkClosed() => _closed.TrySetResult();

    /// <summary>Ends the wait for <see cref="Drained"/> now: the set is disposed and closes the member itself.</summary>
    public void StopWaitingForDrain() => _drained?.TrySetResult();

    public void Exit()
    {
        if (Interlocked.Decrement(ref _outstanding) == 0 && Volatile.Read(ref _retired) != 0)
        {
            _drained!.TrySetResult();
        }
    }
}
