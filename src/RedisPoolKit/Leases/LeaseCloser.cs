namespace RedisPoolKit;

/// <summary>
/// Closes lease sockets reserved for closing (taken out of idle, or marked closing when they came back) and frees
/// their slots in the bag once the socket is gone; a freed slot may let the creator serve a waiter or MinIdle.
/// </summary>
internal sealed class LeaseCloser(LeasePool pool, LeaseBag bag, LeaseCreator creator)
{
    // A method of its own: a lambda at the call site would allocate its closure on every acquire, used or not.

    /// <summary>Closes on the thread pool: for a caller holding the bag's lock.</summary>
    public void CloseInBackground(LeaseEntry entry, string reason) => _ = Task.Run(() => CloseAsync(entry, reason, failure: false));

    /// <summary>Closes <paramref name="entry"/>'s socket; <paramref name="failure"/> logs it as discarded (it failed during its lease) rather than retired.</summary>
    public async Task CloseAsync(LeaseEntry entry, string reason, bool failure)
    {
        if (failure)
        {
            Log.LeaseSocketDiscarded(pool.Logger, pool.PoolName, entry.Connection.Name, reason);
        }
        else
        {
            Log.LeaseSocketRetired(pool.Logger, pool.PoolName, entry.Connection.Name, reason);
        }

        try
        {
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A socket that fails while closing is gone all the same; its slot must come back.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.LeaseCloseFailed(pool.Logger, pool.PoolName, entry.Connection.Name, ex);
        }
        finally
        {
            bool startCreator;
            lock (bag.Lock)
            {
                bag.RemoveClosedLocked(entry);
                startCreator = bag.TryStartCreatingLocked();
            }

            if (startCreator)
            {
                creator.Start();
            }
        }
    }
}
