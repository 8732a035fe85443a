namespace RedisPoolKit;

/// <summary>
/// Validation after idle: a socket idle longer than <see cref="RedisPoolLeaseOptions.ValidateAfterIdle"/> is
/// PINGed before it is handed out, within the caller's time left of <see cref="RedisPoolLeaseOptions.AcquireTimeout"/>,
/// so a socket the server or a proxy dropped while idle never reaches a caller.
/// </summary>
internal sealed class LeaseValidator(LeasePool pool)
{
    /// <summary>True when <paramref name="entry"/> answered; a socket that fails goes back to the pool as broken (closed).</summary>
    public async ValueTask<bool> ValidateAsync(LeaseEntry entry, long started, CancellationToken cancellationToken)
    {
        var options = pool.Options;
        var remaining = options.AcquireTimeout - pool.Clock.ElapsedSince(started);
        using var deadline = new CancellationTokenSource(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, pool.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        bool alive;
        try
        {
            alive = await entry.Connection.PingAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            pool.Return(entry, broken: true, reason: $"no PONG within the 'Leases.AcquireTimeout' ({RedisPoolOptionsValidator.Format(options.AcquireTimeout)}) left to the caller", pool.Clock.Now);
            throw pool.ValidationTimeout();
        }
        catch (OperationCanceledException)
        {
            pool.Return(entry, broken: true, reason: "PING interrupted by cancellation", pool.Clock.Now);
            throw;
        }

        if (!alive)
        {
            pool.Return(entry, broken: true, reason: $"no PONG after {RedisPoolOptionsValidator.Format(options.ValidateAfterIdle)} idle ('Leases.ValidateAfterIdle')", pool.Clock.Now);
        }

        return alive;
    }
}
