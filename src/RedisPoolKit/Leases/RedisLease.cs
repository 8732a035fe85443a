using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// One exclusive connection leased from the pool's budget, for blocking commands and connection state
/// (<c>WATCH</c>/<c>MULTI</c>). Dispose it to return the connection.
/// </summary>
public sealed partial class RedisLease : IAsyncDisposable, IDisposable
{
    // PLACEHOLDER (issue 4 replaces this file).
    private RedisLease(IDatabase database) => Database = database;

    /// <summary>An <see cref="IDatabase"/> bound to this lease's socket alone.</summary>
    public IDatabase Database { get; }

    /// <summary>Returns the connection to the pool.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Returns the connection to the pool.</summary>
    public void Dispose() { }
}
