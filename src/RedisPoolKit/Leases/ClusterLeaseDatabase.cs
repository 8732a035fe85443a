using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The <see cref="IDatabase"/> of a cluster lease: a <see cref="LeaseDatabase"/> that also follows a redirect. A command
/// answered <c>MOVED</c> or <c>ASK</c> (its slot moved, or is moving, to another master while the lease held its socket)
/// did not run; it runs once on a lease socket of the new owner, <c>ASKING</c> first, and its result is returned.
/// </summary>
/// <remarks>
/// <para>
/// The lease keeps its own socket, and each redirected command is followed on its own: the socket on the new owner is
/// taken from that master's lease pool for the one command and given back, so it counts against that master's
/// <see cref="RedisPoolLeaseOptions.MaxLeases"/> and budget only while it is used. The lease is not moved to the new
/// owner: its socket's <c>CLIENT ID</c> and any <c>WATCH</c>/<c>MULTI</c> state belong to the node it was opened on,
/// and commands for the node's other slots still belong there.
/// </para>
/// <para>
/// Not followed: a command sent with <see cref="CommandFlags.FireAndForget"/> (its reply, the redirect included, is
/// never read) or <see cref="CommandFlags.NoRedirect"/> (the caller asked to see it); a second redirect (the slot moved
/// again), which fails with an exception saying so, unless it points back at the lease's own master (the slot is moving
/// to it), where the command then runs on the lease's own socket after <c>ASKING</c>; scans, which run as they are enumerated; and batches and
/// transactions, whose commands are sent together on the lease's own socket.
/// </para>
/// </remarks>
[GenerateForwarding(typeof(IDatabase), nameof(Inner), Retry = true)]
internal sealed partial class ClusterLeaseDatabase : ILeaseDatabase
{
    private const CommandFlags NotFollowed = CommandFlags.FireAndForget | CommandFlags.NoRedirect;

    private readonly IDatabase _inner;
    private readonly LeaseEntry _entry;

    public ClusterLeaseDatabase(IDatabase inner, LeaseEntry entry, long leaseId)
    {
        _inner = inner;
        _entry = entry;
        LeaseId = leaseId;
    }

    public long LeaseId { get; }

    // Sent when executed, which can be after the lease went back to the pool: Execute checks the lease again.
    public IBatch CreateBatch(object? asyncState = null) => new LeaseBatch(this, Inner.CreateBatch(asyncState));

    public ITransaction CreateTransaction(object? asyncState = null) => new LeaseTransaction(this, Inner.CreateTransaction(asyncState));

    ITransactionAsync IDatabaseAsync.CreateTransaction(object? asyncState) => CreateTransaction(asyncState);

    public void ThrowIfUnusable() => _ = Inner;

    private IDatabase Inner
    {
        get
        {
            _entry.ThrowIfUnusableBy(LeaseId);
            return _inner;
        }
    }

    private static bool ShouldRetry(Exception exception, CommandFlags flags) =>
        (flags & NotFollowed) == 0 && LeaseRedirect.Target(exception) is not null;

    private T Retry<TArgs, T>(Exception first, string member, TArgs args, Func<IDatabase, TArgs, T> run)
    {
        Exception again;
        using (var there = Acquire(first, member))
        {
            try
            {
                return run(Asking(there.Entry.Connection.Database), args);
            }
            catch (Exception failure) when (IsSecondRedirect(there, member, failure))
            {
                again = failure;
            }
        }

        if (IsSentBack(again))
        {
            try
            {
                return run(Asking(Inner), args);
            }
            catch (Exception failure) when (LeaseRedirect.Target(failure) is not null)
            {
                again = failure;
            }
        }

        throw Twice(first, member, again);
    }

    private void Retry<TArgs>(Exception first, string member, TArgs args, Action<IDatabase, TArgs> run) =>
        Retry(first, member, (args, run), static (database, state) =>
        {
            state.run(database, state.args);
            return true;
        });

    private Task<T> RetryAsync<TArgs, T>(Task<T> first, CommandFlags flags, string member, TArgs args, Func<IDatabase, TArgs, Task<T>> run) =>
        first.IsCompletedSuccessfully || (flags & NotFollowed) != 0 ? first : FollowAsync(first, member, args, run);

    private Task RetryAsync<TArgs>(Task first, CommandFlags flags, string member, TArgs args, Func<IDatabase, TArgs, Task> run) =>
        first.IsCompletedSuccessfully || (flags & NotFollowed) != 0
            ? first
            : FollowAsync(WithResult(first), member, (args, run), static async (database, state) =>
            {
                await state.run(database, state.args).ConfigureAwait(false);
                return true;
            });

    private static async Task<bool> WithResult(Task task)
    {
        await task.ConfigureAwait(false);
        return true;
    }

    private async Task<T> FollowAsync<TArgs, T>(Task<T> first, string member, TArgs args, Func<IDatabase, TArgs, Task<T>> run)
    {
        try
        {
            return await first.ConfigureAwait(false);
        }
        catch (RedisException redirect) when (LeaseRedirect.Target(redirect) is not null)
        {
            Exception again;
            using (var there = await AcquireAsync(redirect, member).ConfigureAwait(false))
            {
                try
                {
                    return await run(Asking(there.Entry.Connection.Database), args).ConfigureAwait(false);
                }
                catch (Exception failure) when (IsSecondRedirect(there, member, failure))
                {
                    again = failure;
                }
            }

            if (IsSentBack(again))
            {
                try
                {
                    return await run(Asking(Inner), args).ConfigureAwait(false);
                }
                catch (Exception failure) when (LeaseRedirect.Target(failure) is not null)
                {
                    again = failure;
                }
            }

            throw Twice(redirect, member, again);
        }
    }

    /// <summary>
    /// Sends <c>ASKING</c> ahead of the command that follows on <paramref name="database"/>'s one socket, without waiting
    /// for its reply: the socket keeps the order, and a redirect needs <c>ASKING</c> where the slot is being imported
    /// (where it is already served, it changes nothing).
    /// </summary>
    private static IDatabase Asking(IDatabase database)
    {
        database.Execute("ASKING", [], CommandFlags.FireAndForget);
        return database;
    }

    /// <summary>Leases a socket on the redirect's target, from that master's own lease pool.</summary>
    private ValueTask<RedisLease> AcquireAsync(Exception redirect, string member)
    {
        var target = LeaseRedirect.Target(redirect)!;
        var pool = _entry.Pool;
        if (_entry.FirstRedirectOf(LeaseId))
        {
            Log.LeaseRedirectFollowed(pool.Logger, pool.PoolName, LeaseId, pool.Node, member, target);
        }

        var cluster = pool.Cluster ?? throw new InvalidOperationException("A cluster lease's pool has no cluster.");
        return cluster.For(target).AcquireAsync(CancellationToken.None);
    }

    private RedisLease Acquire(Exception redirect, string member)
    {
        var pending = AcquireAsync(redirect, member);
        return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// Whether the command followed to another master was redirected again; otherwise it is rethrown, after marking the
    /// other socket broken when the failure leaves it unusable.
    /// </summary>
    private static bool IsSecondRedirect(RedisLease there, string member, Exception failure)
    {
        if (LeaseRedirect.Target(failure) is not null)
        {
            return true;
        }

        if (failure is RedisConnectionException or RedisTimeoutException or TimeoutException)
        {
            Volatile.Write(ref there.Entry.BrokenReason, $"{member} failed after a redirect: {failure.GetType().Name}");
        }

        return false;
    }

    /// <summary>
    /// Whether the second redirect points back at the lease's own master: the slot is moving to it (the old owner named in
    /// its map answers <c>ASK</c> for keys already there), so the command runs on the lease's own socket after <c>ASKING</c>.
    /// </summary>
    private bool IsSentBack(Exception again) =>
        _entry.Pool.Node is { } node && LeaseRedirect.Target(again) is { } target
        && RedisConnectionFactory.Format(target) == RedisConnectionFactory.Format(node);

    private RedisException Twice(Exception first, string member, Exception again) =>
        LeaseRedirect.Twice(member, LeaseId, _entry.Pool.Node, LeaseRedirect.Target(first)!, LeaseRedirect.Target(again)!, again);
}
