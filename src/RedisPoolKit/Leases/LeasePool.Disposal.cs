namespace RedisPoolKit;

/// <summary>The lease pool's bounded disposal.</summary>
internal sealed partial class LeasePool
{
    private static readonly TimeSpan s_forcedCloseBound = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Fails waiters with <see cref="ObjectDisposedException"/>, closes idle sockets, lets leases come back for
    /// the shutdown grace period, then closes the ones still held.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        List<LeaseWaiter> waiters;
        List<LeaseEntry> idle;
        lock (_bag.Lock)
        {
            if (!_bag.TryDisposeLocked(out waiters, out idle))
            {
                return;
            }
        }

        await _housekeeper.DisposeAsync().ConfigureAwait(false);
        await _creator.CancelAsync().ConfigureAwait(false);
        foreach (var waiter in waiters)
        {
            waiter.TrySetException(new ObjectDisposedException(nameof(LeasePool), $"Pool '{PoolName}' was disposed while waiting for a lease."));
        }

        foreach (var entry in idle)
        {
            _ = Closer.CloseAsync(entry, "pool disposed", failure: false);
        }

        var forced = 0;
        try
        {
            await _bag.Drained.WaitAsync(_shutdownGracePeriod, TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            forced = await CloseLeasedAsync().ConfigureAwait(false);
        }

        Log.LeasePoolDisposed(Logger, PoolName, forced, _shutdownGracePeriod.TotalMilliseconds);
        _creator.Dispose();
    }

    /// <summary>Closes the sockets still leased after the grace period; returns how many.</summary>
    private async Task<int> CloseLeasedAsync()
    {
        List<LeaseEntry> held;
        lock (_bag.Lock)
        {
            held = _bag.TakeLeasedLocked();
        }

        // The holders may never call Dispose: their leak timers would outlive the pool and report a socket it closed.
        foreach (var entry in held)
        {
            if (entry.Leak is { } watch)
            {
                entry.Leak = null;
                watch.Stop();
            }
        }

        foreach (var entry in held)
        {
            _ = Closer.CloseAsync(entry, "still leased after 'ShutdownGracePeriod'", failure: false);
        }

        try
        {
            await _bag.Drained.WaitAsync(s_forcedCloseBound, TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A close that hangs past this bound is StackExchange.Redis's to finish; disposal stays bounded.
        }

        return held.Count;
    }
}
