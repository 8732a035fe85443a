using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>The RedisPoolKit pool. See <see cref="IRedisPool"/>.</summary>
public sealed partial class RedisPool : IRedisPool
{
    /// <summary>Creates a pool. Validates <paramref name="options"/> (throwing one exception naming every invalid option) and does no I/O.</summary>
    public RedisPool(RedisPoolOptions options, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, timeProvider: null, meterFactory: null)
    {
    }

    internal RedisPool(RedisPoolOptions options, ILoggerFactory? loggerFactory, TimeProvider? timeProvider, System.Diagnostics.Metrics.IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        RedisPoolOptionsValidator.ThrowIfInvalid(options);
        Name = options.Name;
        _ = loggerFactory ?? NullLoggerFactory.Instance;
        _ = timeProvider ?? TimeProvider.System;
        _ = meterFactory;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IConnectionMultiplexer Multiplexer => throw new NotImplementedException();

    /// <inheritdoc />
    public RedisPoolCircuitState CircuitState => RedisPoolCircuitState.Closed;

    /// <inheritdoc />
    public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged { add { } remove { } }

    /// <inheritdoc />
    public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged { add { } remove { } }

    /// <inheritdoc />
    public Task ConnectAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <inheritdoc />
    public IDatabase GetDatabase(int db = -1) => throw new NotImplementedException();

    /// <inheritdoc />
    public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <inheritdoc />
    public RedisPoolStatistics GetStatistics() => throw new NotImplementedException();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <inheritdoc />
    public void Dispose() { }
}
