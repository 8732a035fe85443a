using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Where one admitted command goes: the database of the chosen multiplexer, the entry to release, in a cluster the
/// limiter of the node it was admitted by (null for the others), and when the command is one the adaptive in-flight
/// limit times, its start (0 for the others; the node's limit when there is a node, else the pool's).
/// </summary>
internal readonly struct CommandRoute
{
    public CommandRoute(IDatabase database, MultiplexerEntry entry, long sampleStart = 0, AdmissionLimiter? node = null)
    {
        Database = database;
        Entry = entry;
        SampleStart = sampleStart;
        Node = node;
    }

    public IDatabase Database { get; }

    internal MultiplexerEntry Entry { get; }

    internal long SampleStart { get; }

    internal AdmissionLimiter? Node { get; }
}

/// <summary>
/// Admission and routing for the generated <c>PooledDatabase</c>: every command is routed (an admission permit,
/// bounded in flight and in queue, and a count on the least-outstanding multiplexer) and exits on completion,
/// where a failure is counted by its type. The signatures are the source generator's contract.
/// </summary>
internal sealed class CommandRouter
{
    private readonly AdmissionLimiter _admission;
    private readonly MultiplexerSet _multiplexers;
    private readonly RedisPoolMetrics _metrics;

    private readonly string _poolName;

    private readonly NodeBreakers? _nodeBreakers;

    // Set once the pool finds a cluster (with the adaptive limit on): keyed commands are then admitted per node too.
    private NodeAdmission? _nodes;

    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _queueTimeout;

    public CommandRouter(string poolName, AdmissionLimiter admission, MultiplexerSet multiplexers, RedisPoolMetrics metrics, NodeBreakers? nodeBreakers = null, TimeProvider? timeProvider = null, TimeSpan? queueTimeout = null)
    {
        _timeProvider = timeProvider ?? TimeProvider.System;
        _queueTimeout = queueTimeout ?? RedisPoolDefaults.QueueTimeout;
        _nodeBreakers = nodeBreakers;
        _poolName = poolName;
        _admission = admission;
        _multiplexers = multiplexers;
        _metrics = metrics;
    }

    /// <summary>
    /// From now on a command for a key is admitted by its node's limiter before the pool's, and the pool's limit stays
    /// at <c>MaxInFlight</c>: the nodes' limits adapt, each to its own latency.
    /// </summary>
    public void UseNodeLimits(NodeAdmission nodes)
    {
        if (Interlocked.CompareExchange(ref _nodes, nodes, null) is null)
        {
            _admission.UseFixedLimit();
        }
    }

    /// <summary>The per-node limiters once the pool admits per node (in a cluster, with the adaptive limit on); else null.</summary>
    public NodeAdmission? NodeLimits => Volatile.Read(ref _nodes);

    /// <summary>The first key of a multi-key command, which decides its node (a cluster command's keys share one slot); null when there is none.</summary>
    public static RedisKey FirstKey(RedisKey[]? keys) => keys is { Length: > 0 } ? keys[0] : default;

    /// <summary>
    /// <see cref="TryRoute(int, out CommandRoute)"/> for a command on <paramref name="key"/>: in a cluster it takes a
    /// permit of the key's node first. Outside a cluster, one branch more.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool TryRoute(int db, in RedisKey key, out CommandRoute route) =>
        Volatile.Read(ref _nodes) is null ? TryRoute(db, out route) : TryRouteKeyed(db, key, out route);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private bool TryRouteKeyed(int db, in RedisKey key, out CommandRoute route) =>
        Volatile.Read(ref _nodes)!.For(key) is { } node ? TryRouteToNode(db, node, out route) : TryRoute(db, out route);

    /// <summary><see cref="Route(int)"/> for a command on <paramref name="key"/>, admitted by its node too in a cluster.</summary>
    public CommandRoute Route(int db, in RedisKey key)
    {
        if (Volatile.Read(ref _nodes) is { } nodes && nodes.For(key) is { } node)
        {
            if (TryRouteToNode(db, node, out var route))
            {
                return route;
            }

            var pending = RouteToNodeAsync(db, node);
            return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
        }

        return Route(db);
    }

    /// <summary><see cref="RouteAsync(int)"/> for a command on <paramref name="key"/>, admitted by its node too in a cluster.</summary>
    public ValueTask<CommandRoute> RouteAsync(int db, RedisKey key) =>
        Volatile.Read(ref _nodes) is { } nodes && nodes.For(key) is { } node ? RouteToNodeAsync(db, node) : RouteAsync(db);

    private bool TryRouteToNode(int db, AdmissionLimiter node, out CommandRoute route)
    {
        var picked = _multiplexers.TryPick();
        if (picked is not null && node.TryEnter())
        {
            if (_admission.TryEnter())
            {
                _multiplexers.Scaler.NoteLoad(picked);
                if (CountOnMember(picked) is { } entry)
                {
                    route = new CommandRoute(entry.GetDatabase(db), entry, node.SampleStart(), node);
                    return true;
                }

                _admission.Exit();
            }

            node.Exit();
        }

        route = default;
        return false;
    }

    /// <summary>
    /// Waits for the node's permit, then the pool's, within one <c>QueueTimeout</c> in all: a command for a slow node
    /// waits in that node's queue and takes none of the pool's permits meanwhile.
    /// </summary>
    private async ValueTask<CommandRoute> RouteToNodeAsync(int db, AdmissionLimiter node)
    {
        _admission.ThrowIfClosed();
        var started = _timeProvider.GetTimestamp();
        if (!node.TryEnter())
        {
            using var activity = RedisPoolActivity.StartAdmissionWait(_poolName);
            try
            {
                await node.EnterAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                RedisPoolActivity.SetFailed(activity, ex);
                throw;
            }
        }

        try
        {
            var left = _queueTimeout - _timeProvider.GetElapsedTime(started);
            var route = await RouteAsync(db, left > TimeSpan.Zero ? left : TimeSpan.Zero).ConfigureAwait(false);
            return new CommandRoute(route.Database, route.Entry, node.SampleStart(), node);
        }
        catch
        {
            node.Exit();
            throw;
        }
    }

    /// <summary>
    /// Routes one command without waiting: picks the least busy member, takes an admission permit and counts the
    /// command on the member. False when the caller would have to queue or connect first.
    /// </summary>
    public bool TryRoute(int db, out CommandRoute route)
    {
        var picked = _multiplexers.TryPick();
        if (picked is not null && _admission.TryEnter())
        {
            _multiplexers.Scaler.NoteLoad(picked);
            if (CountOnMember(picked) is { } entry)
            {
                route = new CommandRoute(entry.GetDatabase(db), entry, _admission.SampleStart());
                return true;
            }

            _admission.Exit();
        }

        route = default;
        return false;
    }

    /// <summary>Routes one command for the sync API: waits up to QueueTimeout, or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public CommandRoute Route(int db)
    {
        if (TryRoute(db, out var route))
        {
            return route;
        }

        var pending = RouteAsync(db);
        return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Routes one command, waiting up to QueueTimeout for a permit (connecting the first member if needed), or throws <see cref="RedisPoolExhaustedException"/>.</summary>
    public ValueTask<CommandRoute> RouteAsync(int db) => RouteAsync(db, queueTimeout: null);

    private async ValueTask<CommandRoute> RouteAsync(int db, TimeSpan? queueTimeout)
    {
        _admission.ThrowIfClosed();
        var entry = await _multiplexers.PickAsync(CancellationToken.None).ConfigureAwait(false);
        if (!_admission.TryEnter())
        {
            using var activity = RedisPoolActivity.StartAdmissionWait(_poolName);
            try
            {
                if (queueTimeout is { } left)
                {
                    await _admission.EnterAsync(left).ConfigureAwait(false);
                }
                else
                {
                    await _admission.EnterAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                RedisPoolActivity.SetFailed(activity, ex);
                throw;
            }
        }

        try
        {
            // Re-pick after the wait: the least busy member may have changed while we queued.
            var picked = _multiplexers.TryPick() ?? entry;
            _multiplexers.Scaler.NoteLoad(picked);
            var counted = CountOnMember(picked);
            while (counted is null)
            {
                // Every member left while we waited: connect one (bounded by ConnectTimeout).
                counted = CountOnMember(await _multiplexers.PickAsync(CancellationToken.None).ConfigureAwait(false));
            }

            return new CommandRoute(counted.GetDatabase(db), counted, _admission.SampleStart());
        }
        catch
        {
            _admission.Exit();
            throw;
        }
    }

    /// <summary>
    /// Counts a command on <paramref name="entry"/>, or on the next member if it left the set between the pick and
    /// the count (see <see cref="MultiplexerEntry.MarkRetired"/>); null when no member is left.
    /// </summary>
    private MultiplexerEntry? CountOnMember(MultiplexerEntry? entry)
    {
        while (entry is not null)
        {
            entry.Enter();
            if (!entry.IsRetired)
            {
                return entry;
            }

            entry.Exit();
            entry = _multiplexers.TryPick();
        }

        return null;
    }

    /// <summary>Releases the admission permit and the multiplexer's outstanding count; counts <paramref name="failure"/>, if any.</summary>
    public void Exit(in CommandRoute route, Exception? failure)
    {
        if (route.Node is { } node)
        {
            ExitNode(route.Entry, node, route.SampleStart, failure);
        }
        else
        {
            Exit(route.Entry, route.SampleStart, failure);
        }
    }

    /// <summary>Releases a command whose task has completed; counts its failure, if it faulted.</summary>
    public void Exit(in CommandRoute route, Task completed) => Exit(route, CommandCompletion.FailureOf(completed));

    /// <summary>
    /// The oldest member's database, without admission, for work that outlives the call: lazily enumerated scans,
    /// batches and transactions. Scale-in retires the newest member only, so this one is not closed under them.
    /// While the oldest is reconnecting, a connected member serves instead: failing fast there helps nobody.
    /// </summary>
    public IDatabase Pick(int db) => PickEntry().GetDatabase(db);

    /// <summary>The member <see cref="Pick"/> would use, for a batch or transaction that is pinned to it.</summary>
    public MultiplexerEntry PickEntry()
    {
        _admission.ThrowIfClosed();
        return _multiplexers.Oldest is { IsConnected: true } oldest
            ? oldest
            : _multiplexers.TryPick() ?? _multiplexers.PickAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Admits the execution of a batch or transaction pinned to <paramref name="entry"/> without waiting; false when it
    /// would have to queue, or when the member has left the set (then <see cref="RoutePinnedAsync"/> says why).
    /// </summary>
    public bool TryRoutePinned(MultiplexerEntry entry, out CommandRoute route)
    {
        if (_admission.TryEnter())
        {
            entry.Enter();
            if (!entry.IsRetired)
            {
                route = new CommandRoute(entry.GetDatabase(-1), entry);
                return true;
            }

            entry.Exit();
            _admission.Exit();
        }

        route = default;
        return false;
    }

    /// <summary>
    /// Admits the execution of a batch or transaction pinned to <paramref name="entry"/> like one command: it waits
    /// while admission is full or held (a Sentinel failover), up to QueueTimeout. When the member left the set meanwhile
    /// (Sentinel moved the master away from it), its commands must not be sent: once its multiplexer is closed,
    /// <paramref name="failQueued"/> fails them there without sending anything, and this throws <see cref="RedisPoolException"/>.
    /// </summary>
    public async ValueTask<CommandRoute> RoutePinnedAsync(MultiplexerEntry entry, Action failQueued, string what)
    {
        if (TryRoutePinned(entry, out var route))
        {
            return route;
        }

        _admission.ThrowIfClosed();
        if (!entry.IsRetired)
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

            entry.Enter();
            if (!entry.IsRetired)
            {
                return new CommandRoute(entry.GetDatabase(-1), entry);
            }

            entry.Exit();
            _admission.Exit();
        }

        // Bounded: a retired member is closed once its commands finish, within the pool's ShutdownGracePeriod.
        await entry.Closed.ConfigureAwait(false);
        try
        {
            failQueued();
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or InvalidOperationException)
        {
            // The closed multiplexer refused the commands, which is the point: each queued task now fails too.
        }

        throw new RedisPoolException(
            $"Pool '{_poolName}' did not send the {what}: it was created on a connection to {entry.Connection.Node ?? "the server"} that the pool has closed since (Sentinel moved the master away from it, or the pool was shrinking). None of its commands was sent; create the {what} again.");
    }

    /// <summary>The synchronous <see cref="RoutePinnedAsync"/>, for Execute on a batch or transaction.</summary>
    public CommandRoute RoutePinned(MultiplexerEntry entry, Action failQueued, string what)
    {
        if (TryRoutePinned(entry, out var route))
        {
            return route;
        }

        var pending = RoutePinnedAsync(entry, failQueued, what);
        return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task<T> Track<T>(CommandRoute route, Task<T> task) =>
        route.Node is { } node ? CommandCompletion.Track(task, new NodeRouteExit(this, route.Entry, node, route.SampleStart))
        : route.SampleStart == 0
            ? CommandCompletion.Track(task, new RouteExit(this, route.Entry))
            : CommandCompletion.Track(task, new SampledRouteExit(this, route.Entry, route.SampleStart));

    /// <summary>Exits when <paramref name="task"/> completes; returns a task with the same outcome.</summary>
    public Task Track(CommandRoute route, Task task) =>
        route.Node is { } node ? CommandCompletion.Track(task, new NodeRouteExit(this, route.Entry, node, route.SampleStart))
        : route.SampleStart == 0
            ? CommandCompletion.Track(task, new RouteExit(this, route.Entry))
            : CommandCompletion.Track(task, new SampledRouteExit(this, route.Entry, route.SampleStart));

    private void Exit(MultiplexerEntry entry, long sampleStart, Exception? failure)
    {
        entry.Exit();

        // Only a command that got its answer says something about the server's latency: a failure may be instant.
        _admission.Exit(failure is null ? sampleStart : 0);
        if (failure is not null and not OperationCanceledException)
        {
            _metrics.RecordCommandFailed(failure);
        }
    }

    // A command admitted by its node: the node's limit times it (the pool's is fixed in a cluster), and both permits return.
    private void ExitNode(MultiplexerEntry entry, AdmissionLimiter node, long sampleStart, Exception? failure)
    {
        entry.Exit();
        _admission.Exit();
        node.Exit(failure is null ? sampleStart : 0);
        if (failure is not null and not OperationCanceledException)
        {
            _metrics.RecordCommandFailed(failure);
        }
    }

    // A struct, so CommandCompletion is specialized for it: no interface call and no allocation per command.
    /// <summary>
    /// The exception the caller should see for <paramref name="failure"/> instead, or null: a command that found no
    /// connection to a cluster node whose breaker is open fails with <see cref="RedisPoolCircuitOpenException"/> naming it.
    /// </summary>
    public Exception? Translate(Exception failure) => _nodeBreakers?.Translate(failure);

    /// <summary>
    /// Throws <see cref="RedisPoolCircuitOpenException"/> when <paramref name="key"/>'s slot is on a cluster node whose
    /// breaker is open: StackExchange.Redis would hold the command for its timeout. One volatile read while every node's
    /// breaker is closed.
    /// </summary>
    public void ThrowIfNodeOpen(in RedisKey key)
    {
        if (_nodeBreakers is { AnyNotClosed: true } breakers && NodeRefusalSlow(breakers, key) is { } refusal)
        {
            throw refusal;
        }
    }

    /// <summary>
    /// The <see cref="RedisPoolCircuitOpenException"/> <see cref="ThrowIfNodeOpen"/> would throw, or null: an asynchronous
    /// command returns it as a faulted task, as it does every other refusal.
    /// </summary>
    public Exception? NodeRefusal(in RedisKey key) =>
        _nodeBreakers is { AnyNotClosed: true } breakers ? NodeRefusalSlow(breakers, key) : null;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private Exception? NodeRefusalSlow(NodeBreakers breakers, RedisKey key) =>
        // The per-node admission's slot table names the owner without asking StackExchange.Redis, whose view of a
        // full node's slots can be briefly empty (then the command would wait out its timeout instead).
        Volatile.Read(ref _nodes)?.For(key)?.NodeName is { } owner
            ? breakers.Refusal(owner, $"failed a command for a slot on node {owner} at once, without sending it")
            : _multiplexers.Oldest is { } entry ? breakers.RefusalFor(entry.Multiplexer, key) : null;

    private readonly struct NodeRouteExit(CommandRouter router, MultiplexerEntry entry, AdmissionLimiter node, long sampleStart) : ICommandExit
    {
        public void Exit(Exception? failure) => router.ExitNode(entry, node, sampleStart, failure);

        public Exception? Translate(Exception failure) => router.Translate(failure);
    }

    private readonly struct RouteExit(CommandRouter router, MultiplexerEntry entry) : ICommandExit
    {
        public void Exit(Exception? failure) => router.Exit(entry, sampleStart: 0, failure);

        public Exception? Translate(Exception failure) => router.Translate(failure);
    }

    // The one command in 16 the adaptive limit times carries its start; the others keep the smaller state machine.
    private readonly struct SampledRouteExit(CommandRouter router, MultiplexerEntry entry, long sampleStart) : ICommandExit
    {
        public void Exit(Exception? failure) => router.Exit(entry, sampleStart, failure);

        public Exception? Translate(Exception failure) => router.Translate(failure);
    }
}
