using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// One exclusive connection leased from the pool's budget, for blocking commands and connection state
/// (<c>WATCH</c>/<c>MULTI</c>). Dispose it to return the connection; disposing twice is harmless, and every
/// member throws <see cref="ObjectDisposedException"/> afterwards.
/// </summary>
/// <remarks>
/// <para>
/// The blocking helpers take a <see cref="TimeSpan"/> timeout that must be at least 1 s shorter than
/// <see cref="RedisPoolLeaseOptions.CommandTimeout"/>. Cancelling one sends <c>CLIENT UNBLOCK</c> for this
/// socket over another socket of the pool; the socket comes back to the pool only when the blocked command is
/// proven to have answered, otherwise it is closed. A lease runs one blocking helper at a time.
/// </para>
/// <para>
/// Each acquisition returns a new <see cref="RedisLease"/> (holding only the pooled socket's entry and this lease's
/// id; everything else about the lease is kept on the pooled entry). The object is not recycled on purpose: a
/// caller may keep a reference after disposing it, and if the same object were handed to the next acquirer that
/// stale reference would be indistinguishable from the new holder's, so its second <see cref="Dispose"/> would
/// return the new holder's socket and its later calls would run on it. With one handle per acquisition the
/// stale handle's id no longer matches the entry's, so its <see cref="Dispose"/> does nothing and its members
/// throw <see cref="ObjectDisposedException"/>, whoever holds the socket now. The price is one
/// allocation per acquisition, small beside the rest of a warm acquire and release.
/// </para>
/// </remarks>
public sealed class RedisLease : IAsyncDisposable, IDisposable
{
    // Room for the network and the server between a blocking command's own timeout and the socket's command timeout.
    private static readonly TimeSpan s_replyMargin = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_unblockedReplyBound = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_notBlockedReplyBound = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_unblockBound = TimeSpan.FromSeconds(5);

    // The whole per-acquisition state: keep it at two fields (see the remarks).
    private readonly LeaseEntry _entry;
    private readonly long _id;

    internal RedisLease(LeaseEntry entry, long id)
    {
        _entry = entry;
        _id = id;
    }

    internal LeasePool Pool => _entry.Pool;

    /// <summary>Unique within the pool, for logs; readable after disposal.</summary>
    internal long Id => _id;

    /// <summary>The order in which this caller started waiting (0: served without waiting).</summary>
    internal long WaitTicket => Entry.WaitTicket;

    /// <summary>The order in which waiters were served (0: served without waiting).</summary>
    internal long HandOff => Entry.HandOff;

    internal LeaseEntry Entry => _entry.IsHeldBy(_id) ? _entry : throw Disposed();

    /// <summary>The server's <c>CLIENT ID</c> of the leased socket.</summary>
    internal long ClientId => Entry.Connection.ClientId;

    /// <summary>An <see cref="IDatabase"/> bound to this lease's socket alone.</summary>
    /// <remarks>
    /// In a Redis Cluster, a command answered <c>MOVED</c> or <c>ASK</c> (its slot moved, or is moving, to another master
    /// while the lease is held; the command did not run) is run once on a lease socket of the new owner and its result
    /// returned; the lease keeps its own socket. Not followed: a second redirect (unless back to the lease's own master),
    /// <see cref="CommandFlags.FireAndForget"/> and <see cref="CommandFlags.NoRedirect"/> commands, scans, batches and
    /// transactions.
    /// A batch or transaction made on it checks the lease again when executed: its <c>Execute</c> throws <see cref="ObjectDisposedException"/> once the lease was disposed (the socket
    /// may be another caller's by then), or <see cref="RedisPoolException"/> once a failover moved the pool off its
    /// master, and sends nothing; its queued commands' tasks then never complete, as for a batch never executed.
    /// </remarks>
    /// <exception cref="ObjectDisposedException">The lease was disposed.</exception>
    public IDatabase Database
    {
        get
        {
            var entry = Entry;
            var database = entry.Database;

            // A wrapper of an earlier lease, written back by a stale call racing its Dispose, is not reused.
            if (database is null || database.LeaseId != _id)
            {
                database = entry.Pool.Cluster is null
                    ? new LeaseDatabase(entry.Connection.Database, entry, _id)
                    : new ClusterLeaseDatabase(entry.Connection.Database, entry, _id);
                entry.Database = database;
            }

            return database;
        }
    }

    /// <summary><c>BLPOP</c>: pops the first element of the first non-empty list of <paramref name="keys"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="keys">The lists, checked in order.</param>
    /// <param name="timeout">How long the server waits for an element; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). If an element was popped before the unblock took effect it is returned rather than lost.</param>
    /// <returns>The list the element came from and the element, or <see langword="null"/> on timeout.</returns>
    public Task<(RedisKey Key, RedisValue Value)?> BlockingLeftPopAsync(RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        BlockingListPopAsync("BLPOP", keys, timeout, cancellationToken);

    /// <summary><c>BRPOP</c>: pops the last element of the first non-empty list of <paramref name="keys"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="keys">The lists, checked in order.</param>
    /// <param name="timeout">How long the server waits for an element; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). If an element was popped before the unblock took effect it is returned rather than lost.</param>
    /// <returns>The list the element came from and the element, or <see langword="null"/> on timeout.</returns>
    public Task<(RedisKey Key, RedisValue Value)?> BlockingRightPopAsync(RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        BlockingListPopAsync("BRPOP", keys, timeout, cancellationToken);

    /// <summary><c>BLMOVE</c>: moves an element from <paramref name="source"/> to <paramref name="destination"/>, waiting up to <paramref name="timeout"/> for one.</summary>
    /// <param name="source">The list to pop from.</param>
    /// <param name="destination">The list to push to.</param>
    /// <param name="sourceSide">The side of <paramref name="source"/> to pop.</param>
    /// <param name="destinationSide">The side of <paramref name="destination"/> to push.</param>
    /// <param name="timeout">How long the server waits for an element; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). If an element was moved before the unblock took effect it is returned.</param>
    /// <returns>The element moved, or <see cref="RedisValue.Null"/> on timeout.</returns>
    public Task<RedisValue> BlockingMoveAsync(RedisKey source, RedisKey destination, ListSide sourceSide, ListSide destinationSide, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        CheckTimeout(timeout);
        var args = BlockingCommandArguments.Move(source, destination, sourceSide, destinationSide, timeout);
        ThrowIfCrossSlot("BLMOVE", [source, destination]);
        return RunBlockingAsync("BLMOVE", args, static r => (RedisValue)r, static v => !v.IsNull, cancellationToken);
    }

    /// <summary><c>BZPOPMIN</c>: pops the lowest-scored member of the first non-empty sorted set of <paramref name="keys"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="keys">The sorted sets, checked in order.</param>
    /// <param name="timeout">How long the server waits; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). If a member was popped before the unblock took effect it is returned.</param>
    /// <returns>The sorted set and the member with its score, or <see langword="null"/> on timeout.</returns>
    public Task<(RedisKey Key, SortedSetEntry Entry)?> BlockingSortedSetPopMinAsync(RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        BlockingSortedSetPopAsync("BZPOPMIN", keys, timeout, cancellationToken);

    /// <summary><c>BZPOPMAX</c>: pops the highest-scored member of the first non-empty sorted set of <paramref name="keys"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="keys">The sorted sets, checked in order.</param>
    /// <param name="timeout">How long the server waits; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). If a member was popped before the unblock took effect it is returned.</param>
    /// <returns>The sorted set and the member with its score, or <see langword="null"/> on timeout.</returns>
    public Task<(RedisKey Key, SortedSetEntry Entry)?> BlockingSortedSetPopMaxAsync(RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        BlockingSortedSetPopAsync("BZPOPMAX", keys, timeout, cancellationToken);

    /// <summary><c>XREAD [COUNT n] BLOCK ms STREAMS ...</c>: reads entries after the given ids, waiting up to <paramref name="timeout"/> for one.</summary>
    /// <param name="positions">Each stream and the id to read after (<c>$</c> for entries added from now on).</param>
    /// <param name="countPerStream">At most this many entries per stream; <see langword="null"/> for no limit.</param>
    /// <param name="timeout">How long the server waits; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). Entries read before the unblock took effect are returned.</param>
    /// <returns>The streams that had entries, with their entries; empty on timeout.</returns>
    public Task<(RedisKey Key, StreamEntry[] Entries)[]> StreamReadBlockingAsync(StreamPosition[] positions, int? countPerStream, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var args = BlockingCommandArguments.StreamRead(positions, countPerStream, timeout);
        CheckTimeout(timeout);
        ThrowIfCrossSlot("XREAD", positions);
        return RunBlockingAsync("XREAD", args, LeaseReplyParser.Streams, static s => s.Length > 0, cancellationToken);
    }

    /// <summary><c>XREADGROUP GROUP g c [COUNT n] [NOACK] BLOCK ms STREAMS ...</c>: reads entries as a consumer of a group, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="positions">Each stream and the id to read after (<c>&gt;</c> for entries never delivered to the group).</param>
    /// <param name="groupName">The consumer group.</param>
    /// <param name="consumerName">The consumer within the group.</param>
    /// <param name="countPerStream">At most this many entries per stream; <see langword="null"/> for no limit.</param>
    /// <param name="noAck">Whether the entries skip the pending entries list.</param>
    /// <param name="timeout">How long the server waits; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>). Entries delivered before the unblock took effect are returned, not lost.</param>
    /// <returns>The streams that had entries, with their entries; empty on timeout.</returns>
    public Task<(RedisKey Key, StreamEntry[] Entries)[]> StreamReadGroupBlockingAsync(StreamPosition[] positions, RedisValue groupName, RedisValue consumerName, int? countPerStream, bool noAck, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var args = BlockingCommandArguments.StreamReadGroup(positions, groupName, consumerName, countPerStream, noAck, timeout);
        CheckTimeout(timeout);
        ThrowIfCrossSlot("XREADGROUP", positions);
        return RunBlockingAsync("XREADGROUP", args, LeaseReplyParser.Streams, static s => s.Length > 0, cancellationToken);
    }

    /// <summary><c>WAIT</c>: waits until the writes of this connection reach <paramref name="numberOfReplicas"/> replicas, or <paramref name="timeout"/>.</summary>
    /// <param name="numberOfReplicas">Replicas that must acknowledge.</param>
    /// <param name="timeout">How long the server waits; positive and at least 1 s shorter than <see cref="RedisPoolLeaseOptions.CommandTimeout"/>.</param>
    /// <param name="cancellationToken">Unblocks the command (<c>CLIENT UNBLOCK</c>).</param>
    /// <returns>The replicas that acknowledged.</returns>
    public Task<long> WaitForReplicasAsync(int numberOfReplicas, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var args = BlockingCommandArguments.Wait(numberOfReplicas, timeout);
        CheckTimeout(timeout);
        return RunBlockingAsync("WAIT", args, static r => (long)r, static _ => false, cancellationToken);
    }

    /// <summary>Returns the connection to the pool (or closes it when it failed during the lease). Harmless when called again.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Returns the connection to the pool (or closes it when it failed during the lease). Harmless when called again.</summary>
    public void Dispose()
    {
        var entry = _entry;
        if (Interlocked.CompareExchange(ref entry.LeaseId, 0, _id) != _id)
        {
            return;
        }

        // Blocking first: a helper writes its broken reason before it clears the flag, so seeing the flag clear
        // means its reason, if any, is visible too.
        var blocking = Volatile.Read(ref entry.BlockingLeaseId) != 0;
        var connection = entry.Connection;

        // Only commands sent through Database can still owe a reply: the helpers await theirs or mark the socket
        // broken. Skipping the check otherwise matters: on a real socket it is GetCounters(), about 1 µs and 672 B.
        // Any wrapper counts, even one a racing stale call left: checking too often is only slower.
        var sentThroughDatabase = entry.Database is not null;
        entry.Database = null;
        var reason = Volatile.Read(ref entry.BrokenReason)
            ?? (blocking ? "disposed during a blocking command" : null)
            ?? (!connection.IsConnected ? "disconnected during the lease" : null)
            ?? (sentThroughDatabase && connection.HasPendingReplies ? "replies still pending when returned" : null);
        entry.Pool.Release(entry, _id, broken: reason is not null, reason);
    }

    private Task<(RedisKey Key, RedisValue Value)?> BlockingListPopAsync(string command, RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var args = BlockingCommandArguments.KeysThenTimeout(keys, timeout);
        CheckTimeout(timeout);
        ThrowIfCrossSlot(command, keys);
        return RunBlockingAsync(command, args, LeaseReplyParser.ListPop, static v => v is not null, cancellationToken);
    }

    private Task<(RedisKey Key, SortedSetEntry Entry)?> BlockingSortedSetPopAsync(string command, RedisKey[] keys, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var args = BlockingCommandArguments.KeysThenTimeout(keys, timeout);
        CheckTimeout(timeout);
        ThrowIfCrossSlot(command, keys);
        return RunBlockingAsync(command, args, LeaseReplyParser.SortedSetPop, static v => v is not null, cancellationToken);
    }

    private async Task<T> RunBlockingAsync<T>(string command, object[] args, Func<RedisResult, T> parse, Func<T, bool> delivered, CancellationToken cancellationToken)
    {
        var entry = Entry;
        if (Interlocked.CompareExchange(ref entry.BlockingLeaseId, _id, 0) != 0)
        {
            throw new InvalidOperationException($"Lease {_id} is already running a blocking command; a lease runs one at a time (take another lease).");
        }

        // A Dispose racing this call may have returned the socket between the check above and the flag: then the
        // socket is not ours to block. Dispose reads the flag after clearing the id, so one of the two sees the other.
        if (!entry.IsHeldBy(_id))
        {
            Interlocked.CompareExchange(ref entry.BlockingLeaseId, 0, _id);
            throw Disposed();
        }

        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            entry.ThrowIfRetired(_id);
            return await RunOnAsync(entry, command, args, parse, delivered, asking: false, cancellationToken).ConfigureAwait(false);
        }
        catch (RedisException ex) when (entry.Pool.Cluster is { } cluster && LeaseRedirect.Target(ex) is { } target)
        {
            // The slot moved, or is moving, to another master while this lease held its socket: the command did not
            // run. It runs once on a lease socket of the new owner (ASKING first, which an ASK reply requires and a
            // MOVED one does not mind); this socket stays clean and stays the lease's.
            if (entry.FirstRedirectOf(_id))
            {
                Log.LeaseRedirectFollowed(entry.Pool.Logger, entry.Pool.PoolName, _id, entry.Pool.Node, command, target);
            }

            RedisException again;
            using (var there = await cluster.For(target).AcquireAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    return await RunOnAsync(there.Entry, command, args, parse, delivered, asking: true, cancellationToken).ConfigureAwait(false);
                }
                catch (RedisException failure) when (LeaseRedirect.Target(failure) is not null)
                {
                    again = failure;
                }
            }

            // Sent back to this lease's master: the slot is moving to it, and it serves the key after ASKING.
            if (entry.Pool.Node is { } node && RedisConnectionFactory.Format(LeaseRedirect.Target(again)!) == RedisConnectionFactory.Format(node))
            {
                try
                {
                    return await RunOnAsync(entry, command, args, parse, delivered, asking: true, cancellationToken).ConfigureAwait(false);
                }
                catch (RedisException failure) when (LeaseRedirect.Target(failure) is not null)
                {
                    again = failure;
                }
            }

            throw LeaseRedirect.Twice(command, _id, entry.Pool.Node, target, LeaseRedirect.Target(again)!, again);
        }
        finally
        {
            Interlocked.CompareExchange(ref entry.BlockingLeaseId, 0, _id);
        }
    }

    /// <summary>Runs a blocking command on <paramref name="entry"/>'s socket; a cancellation unblocks it there.</summary>
    private static async Task<T> RunOnAsync<T>(LeaseEntry entry, string command, object[] args, Func<RedisResult, T> parse, Func<T, bool> delivered, bool asking, CancellationToken cancellationToken)
    {
        try
        {
            var database = entry.Connection.Database;
            if (asking)
            {
                await database.ExecuteAsync("ASKING").WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            // NoRedirect: a redirect comes back to the lease, which follows it on a socket of its own budget.
            var pending = database.ExecuteAsync(command, args, CommandFlags.NoRedirect);
            RedisResult result;
            try
            {
                result = await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                result = await UnblockAsync(entry, command, pending).ConfigureAwait(false)
                    ?? throw new OperationCanceledException(cancellationToken);
                var late = parse(result);
                return delivered(late) ? late : throw new OperationCanceledException(cancellationToken);
            }

            return parse(result);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or TimeoutException && LeaseRedirect.Target(ex) is null)
        {
            Volatile.Write(ref entry.BrokenReason, $"{command} failed: {ex.GetType().Name}");
            throw;
        }
    }

    /// <summary>Unblocks <paramref name="entry"/>'s socket from another one and waits for the blocked command's reply; null when the socket cannot be proven clean.</summary>
    private static async Task<RedisResult?> UnblockAsync(LeaseEntry entry, string command, Task<RedisResult> pending)
    {
        var pool = entry.Pool;
        var timeProvider = pool.TimeProvider;
        var unblocked = false;
        string? cause;
        try
        {
            unblocked = await pool.UnblockAsync(entry.Connection.ClientId).WaitAsync(s_unblockBound, timeProvider).ConfigureAwait(false);
            return await pending.WaitAsync(unblocked ? s_unblockedReplyBound : s_notBlockedReplyBound, timeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            cause = unblocked ? "CLIENT UNBLOCK answered 1 but no reply followed" : "CLIENT UNBLOCK answered 0 and no reply came: the command may block later";
        }
        catch (NotSupportedException)
        {
            // The server does not permit unblocking: counted per socket and said once per pool, not per cancel.
            cause = null;
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or InvalidOperationException)
        {
            cause = $"CLIENT UNBLOCK failed: {ex.GetType().Name}";
        }

        Volatile.Write(ref entry.BrokenByDesign, cause is null);
        Volatile.Write(ref entry.BrokenReason, cause is null ? $"{command} cancelled; unblocking is not permitted" : $"{command} cancelled and not proven unblocked");
        _ = pending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (cause is not null)
        {
            Log.LeaseUnblockUnproven(pool.Logger, pool.PoolName, command, entry.Connection.Name, entry.Connection.ClientId, cause);
        }

        return null;
    }

    /// <summary>In a cluster, fails a stream read whose streams are in different slots before it is sent.</summary>
    private void ThrowIfCrossSlot(string command, StreamPosition[] positions)
    {
        if (Entry.Pool.Cluster is { } cluster)
        {
            cluster.ThrowIfCrossSlot(command, [.. positions.Select(p => p.Key)]);
        }
    }

    /// <summary>In a cluster, fails a command whose keys are in different slots before it is sent.</summary>
    private void ThrowIfCrossSlot(string command, ReadOnlySpan<RedisKey> keys) => Entry.Pool.Cluster?.ThrowIfCrossSlot(command, keys);

    private void CheckTimeout(TimeSpan timeout)
    {
        var commandTimeout = Entry.Pool.Options.CommandTimeout;
        if (timeout <= TimeSpan.Zero || timeout > commandTimeout - s_replyMargin)
        {
            throw new ArgumentOutOfRangeException(
                nameof(timeout),
                timeout,
                $"A blocking timeout must be greater than zero and at least {s_replyMargin.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s shorter than 'Leases.CommandTimeout' ({RedisPoolOptionsValidator.Format(commandTimeout)}): otherwise the socket would time the command out with its reply still coming. Pass a shorter timeout or raise 'Leases.CommandTimeout'.");
        }
    }

    private ObjectDisposedException Disposed() => new(nameof(RedisLease), $"Lease {_id} was disposed; take a new lease from the pool.");
}
