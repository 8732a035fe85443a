using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>Where one admitted command goes: the database of the chosen multiplexer, and the entry to release.</summary>
internal readonly struct CommandRoute
{
    public CommandRoute(IDatabase database, object entry)
    {
        Database = database;
        Entry = entry;
    }

    public IDatabase Database { get; }

    internal object Entry { get; }
}

/// <summary>
/// Admission and routing for the generated <c>PooledDatabase</c>: every command enters (bounded in
/// flight, bounded queue), is routed to the least-outstanding multiplexer, and exits on completion.
/// </summary>
internal sealed partial class CommandRouter
{
    // PLACEHOLDER (the core pool replaces the bodies; the signatures are the generator's contract).

    /// <summary>Non-blocking admission; false when the caller would have to queue.</summary>
    public bool TryEnter(int db, out CommandRoute route) => throw new NotImplementedException();

    /// <summary>Synchronous admission for the sync API: waits up to QueueTimeout, or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public CommandRoute Enter(int db) => throw new NotImplementedException();

    /// <summary>Asynchronous admission: waits up to QueueTimeout, or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public ValueTask<CommandRoute> EnterAsync(int db) => throw new NotImplementedException();

    /// <summary>Releases the admission permit and the multiplexer's outstanding count; reports <paramref name="failure"/> when not null.</summary>
    public void Exit(in CommandRoute route, Exception? failure) => throw new NotImplementedException();

    /// <summary>A multiplexer's database without admission, for lazily enumerated scans.</summary>
    public IDatabase Pick(int db) => throw new NotImplementedException();

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task<T> Track<T>(CommandRoute route, Task<T> task) => throw new NotImplementedException();

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task Track(CommandRoute route, Task task) => throw new NotImplementedException();
}
