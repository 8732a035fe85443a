using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>Where one admitted command goes: the database of the chosen multiplexer, and the entry to release.</summary>
internal readonly struct CommandRoute
{
    public CommandRoute(IDatabase database, MultiplexerEntry entry)
    {
        Database = database;
        Entry = entry;
    }

    public IDatabase Database { get; }

    internal MultiplexerEntry Entry { get; }
}

/// <summary>
/// Admission and routing for the generated <c>PooledDatabase</c>: every command enters (bounded in
/// flight, bounded queue), is routed to the least-outstanding multiplexer, and exits on completion,
/// where a failure is counted by its type. The signatures are the source generator's contract.
/// </summary>
internal sealed class CommandRouter
{
    private readonly AdmissionLimiter _admission;
    private readonly MultiplexerSet _multiplexers;
    private readonly RedisPoolMetrics _metrics;

    private readonly string _poolName;

    public CommandRouter(string poolName, AdmissionLimiter admission, MultiplexerSet multiplexers, RedisPoolMetrics metrics)
    {
        _poolName = poolName;
        _admission = admission;
        _multiplexers = multiplexers;
        _metrics = metrics;
    }

    /// <summary>Non-blocking admission; false when the caller would have to queue or connect first.</summary>
    public bool TryEnter(int db, out CommandRoute route)
    {
        var entry = _multiplexers.TryPick();
        if (entry is not null && _admission.TryEnter())
        {
            entry.Enter();
            route = new CommandRoute(entry.GetDatabase(db), entry);
            return true;
        }

        route = default;
        return false;
    }

    /// <summary>Synchronous admission for the sync API: waits up to QueueTimeout, or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public CommandRoute Enter(int db)
    {
        if (TryEnter(db, out var route))
        {
            return route;
        }

        var pending = EnterAsync(db);
        return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Asynchronous admission: waits up to QueueTimeout, or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public async ValueTask<CommandRoute> EnterAsync(int db)
    {
        _admission.ThrowIfClosed();
        var entry = await _multiplexers.PickAsync(CancellationToken.None).ConfigureAwait(false);
        if (!_admission.TryEnter())
        {
            using var activity = RedisPoolActivity.StartAdmissionWait(_poolName);
            try
            {
                await _admission.EnterAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                RedisPoolActivity.SetFailed(activity, ex);
                throw;
            }
        }

        // Re-pick after the wait: the least busy member may have changed while we queued.
        entry = _multiplexers.TryPick() ?? entry;
        entry.Enter();
        return new CommandRoute(entry.GetDatabase(db), entry);
    }

    /// <summary>Releases the admission permit and the multiplexer's outstanding count; counts <paramref name="failure"/>, if any.</summary>
    public void Exit(in CommandRoute route, Exception? failure) => Exit(route.Entry, failure);

    /// <summary>Releases a command whose task has completed; counts its failure, if it faulted.</summary>
    public void Exit(in CommandRoute route, Task completed) => Exit(route.Entry, CommandCompletion.FailureOf(completed));

    /// <summary>A multiplexer's database without admission, for lazily enumerated scans and pinned batches.</summary>
    public IDatabase Pick(int db)
    {
        _admission.ThrowIfClosed();
        var entry = _multiplexers.TryPick() ?? _multiplexers.PickAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return entry.GetDatabase(db);
    }

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task<T> Track<T>(CommandRoute route, Task<T> task) => CommandCompletion.Track(task, new RouteExit(this, route.Entry));

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task Track(CommandRoute route, Task task) => CommandCompletion.Track(task, new RouteExit(this, route.Entry));

    private void Exit(MultiplexerEntry entry, Exception? failure)
    {
        entry.Exit();
        _admission.Exit();
        if (failure is not null and not OperationCanceledException)
        {
            _metrics.RecordCommandFailed(failure);
        }
    }

    // A struct, so CommandCompletion is specialized for it: no interface call and no allocation per command.
    private readonly struct RouteExit(CommandRouter router, MultiplexerEntry entry) : ICommandExit
    {
        public void Exit(Exception? failure) => router.Exit(entry, failure);
    }
}
