using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// A budgeted pool of Redis connections: shared multiplexers for ordinary commands, leased exclusive
/// connections for blocking ones, a max-clients breaker in front of every new socket.
/// </summary>
public interface IRedisPool : IAsyncDisposable, IDisposable
{
    /// <summary>The pool's name (its DI key), a tag on every metric.</summary>
    string Name { get; }

    /// <summary>Opens <see cref="RedisPoolOptions.MinMultiplexers"/> multiplexers now, bounded by <see cref="RedisPoolOptions.ConnectTimeout"/>. Optional: the first command connects otherwise.</summary>
    Task ConnectAsync(CancellationToken cancellationToken = default);

    /// <summary>An <see cref="IDatabase"/> whose every command is admitted (bounded in flight, bounded queue) and routed to the least busy multiplexer.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="db"/> is below -1 (-1 is the configuration's default database).</exception>
    IDatabase GetDatabase(int db = -1);

    /// <summary>A drop-in <see cref="IConnectionMultiplexer"/> over the pool. Disposing it does not dispose the pool.</summary>
    IConnectionMultiplexer Multiplexer { get; }

    /// <summary>Leases one exclusive connection for blocking commands, from the same socket budget. Dispose the lease to return it.</summary>
    /// <remarks>Against a Redis Cluster this throws <see cref="InvalidOperationException"/>: lease with <see cref="LeaseAsync(RedisKey, CancellationToken)"/> there.</remarks>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0027:API with optional parameter(s) should have the most parameters amongst its public overloads", Justification = "LeaseAsync() is the common call; the keyed overload takes its token without a default, so no call can match both.")]
    ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Leases one exclusive connection for blocking commands on <paramref name="key"/> and keys of its slot. Against a
    /// Redis Cluster the connection is one socket on the master that owns the key's slot, and
    /// <see cref="RedisPoolLeaseOptions.MaxLeases"/> applies to each master; elsewhere it is the same as
    /// <see cref="LeaseAsync(CancellationToken)"/>. Dispose the lease to return it.
    /// </summary>
    /// <param name="key">A key the lease's commands will use: it picks the master. Keys sharing its hash tag share its slot.</param>
    /// <param name="cancellationToken">Stops waiting for a lease.</param>
    ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken);

    /// <summary><see cref="LeaseAsync(RedisKey, CancellationToken)"/> without a cancellation token: waits up to <see cref="RedisPoolLeaseOptions.AcquireTimeout"/>.</summary>
    /// <param name="key">A key the lease's commands will use: it picks the master. Keys sharing its hash tag share its slot.</param>
    ValueTask<RedisLease> LeaseAsync(RedisKey key) => LeaseAsync(key, CancellationToken.None);

    /// <summary>A snapshot of the pool's counters.</summary>
    RedisPoolStatistics GetStatistics();

    /// <summary>The max-clients breaker's state.</summary>
    RedisPoolCircuitState CircuitState { get; }

    /// <summary>Raised when the breaker changes state.</summary>
    event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged;

    /// <summary>Raised when the server's utilization crosses a threshold, either way.</summary>
    event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged;
}
