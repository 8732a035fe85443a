using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using StackExchange.Redis.Maintenance;

namespace RedisPoolKit;

/// <summary>
/// The drop-in <see cref="IConnectionMultiplexer"/> over the pool (<see cref="IRedisPool.Multiplexer"/>).
/// Members without pool semantics are generated and forward to the oldest member; the ones written here
/// route, aggregate, keep pub/sub subscriptions across member changes, or refuse to dispose the pool.
/// </summary>
[GenerateForwarding(typeof(IConnectionMultiplexer), nameof(Primary))]
internal sealed partial class PooledMultiplexer : IConnectionMultiplexer
{
    private readonly RedisPool _pool;
    private readonly MultiplexerSet _set;
    private readonly EventRelay<ConnectionFailedEventArgs> _connectionFailed;
    private readonly EventRelay<ConnectionFailedEventArgs> _connectionRestored;
    private readonly EventRelay<RedisErrorEventArgs> _errorMessage;
    private readonly EventRelay<InternalErrorEventArgs> _internalError;
    private readonly EventRelay<EndPointEventArgs> _configurationChanged;
    private readonly EventRelay<EndPointEventArgs> _configurationChangedBroadcast;
    private readonly EventRelay<HashSlotMovedEventArgs> _hashSlotMoved;
    private readonly EventRelay<ServerMaintenanceEvent> _serverMaintenanceEvent;
    private readonly SubscriptionBinding _subscriptions;
    private readonly PooledSubscriber _subscriber;
    private int _sharedSocketSubscribed;

    public PooledMultiplexer(RedisPool pool, MultiplexerSet set, ILogger logger)
    {
        _pool = pool;
        _set = set;
        _subscriptions = new SubscriptionBinding(
            pool.Name,
            logger,
            oldest: () => set.Oldest?.Multiplexer,
            connect: () => set.PickAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult().Multiplexer);
        _subscriber = new PooledSubscriber(_subscriptions, this, asyncState: null);
        if (pool.ConnectionFactory.SharesSubscriptionSocket)
        {
            _subscriptions.Subscribing += () =>
            {
                if (Interlocked.Exchange(ref _sharedSocketSubscribed, 1) == 0)
                {
                    Log.SharedSocketSubscribed(logger, pool.Name);
                }
            };
        }

        _connectionFailed = new(this, static (m, h) => m.ConnectionFailed += h, static (m, h) => m.ConnectionFailed -= h);
        _connectionRestored = new(this, static (m, h) => m.ConnectionRestored += h, static (m, h) => m.ConnectionRestored -= h);
        _errorMessage = new(this, static (m, h) => m.ErrorMessage += h, static (m, h) => m.ErrorMessage -= h);
        _internalError = new(this, static (m, h) => m.InternalError += h, static (m, h) => m.InternalError -= h);
        _configurationChanged = new(this, static (m, h) => m.ConfigurationChanged += h, static (m, h) => m.ConfigurationChanged -= h);
        _configurationChangedBroadcast = new(this, static (m, h) => m.ConfigurationChangedBroadcast += h, static (m, h) => m.ConfigurationChangedBroadcast -= h);
        _hashSlotMoved = new(this, static (m, h) => m.HashSlotMoved += h, static (m, h) => m.HashSlotMoved -= h);
        _serverMaintenanceEvent = new(this, static (m, h) => m.ServerMaintenanceEvent += h, static (m, h) => m.ServerMaintenanceEvent -= h);

        // Events are gathered from every current and future member.
        set.Added += OnAdded;
        set.Removed += OnRemoved;
        foreach (var entry in set.Entries)
        {
            OnAdded(entry);
        }
    }

    /// <summary>The oldest member: stable for subscriptions and server-level calls; connects the first one when none exists.</summary>
    private IConnectionMultiplexer Primary =>
        (_set.Oldest ?? _set.PickAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult()).Multiplexer;

    public event EventHandler<ConnectionFailedEventArgs>? ConnectionFailed { add => _connectionFailed.Add(value); remove => _connectionFailed.Remove(value); }

    public event EventHandler<ConnectionFailedEventArgs>? ConnectionRestored { add => _connectionRestored.Add(value); remove => _connectionRestored.Remove(value); }

    public event EventHandler<RedisErrorEventArgs>? ErrorMessage { add => _errorMessage.Add(value); remove => _errorMessage.Remove(value); }

    public event EventHandler<InternalErrorEventArgs>? InternalError { add => _internalError.Add(value); remove => _internalError.Remove(value); }

    public event EventHandler<EndPointEventArgs>? ConfigurationChanged { add => _configurationChanged.Add(value); remove => _configurationChanged.Remove(value); }

    public event EventHandler<EndPointEventArgs>? ConfigurationChangedBroadcast { add => _configurationChangedBroadcast.Add(value); remove => _configurationChangedBroadcast.Remove(value); }

    public event EventHandler<HashSlotMovedEventArgs>? HashSlotMoved { add => _hashSlotMoved.Add(value); remove => _hashSlotMoved.Remove(value); }

    public event EventHandler<ServerMaintenanceEvent>? ServerMaintenanceEvent { add => _serverMaintenanceEvent.Add(value); remove => _serverMaintenanceEvent.Remove(value); }

    /// <summary>The configuration the pool's multiplexers connect with, with the password redacted (<c>password=*****</c>).</summary>
    public string Configuration => _pool.ConnectionFactory.RedactedConfiguration;

    public string ClientName => _pool.ConnectionFactory.ClientNamePrefix.TrimEnd(':');

    public bool IsConnected => _set.Entries.Any(e => e.IsConnected);

    public bool IsConnecting => _set.Entries.Any(e => e.Multiplexer.IsConnecting);

    public long OperationCount => _set.Entries.Sum(e => e.Multiplexer.OperationCount);

    /// <summary>The routed, admission-controlled database: the same as <see cref="IRedisPool.GetDatabase"/>.</summary>
    public IDatabase GetDatabase(int db = -1, object? asyncState = null) => _pool.GetDatabase(db);

    /// <summary>
    /// A subscriber bound to the oldest member (scale-in never retires it). Subscriptions made through it are
    /// recorded and moved to the next member when that one leaves the pool; see <see cref="SubscriptionBinding"/>.
    /// </summary>
    public ISubscriber GetSubscriber(object? asyncState = null)
        => asyncState is null ? _subscriber : new PooledSubscriber(_subscriptions, this, asyncState);

    internal SubscriptionBinding Subscriptions => _subscriptions;

    public string GetStatus()
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        GetStatus(writer);
        return writer.ToString();
    }

    public void GetStatus(TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var statistics = _pool.GetStatistics();
        log.WriteLine($"RedisPoolKit pool '{statistics.PoolName}': {statistics.Sockets} of {statistics.MaxConnections} sockets, {statistics.Multiplexers} multiplexers, {statistics.InFlight} in flight, {statistics.Queued} queued, circuit {statistics.CircuitState}");
        foreach (var entry in _set.Entries)
        {
            log.WriteLine($"-- multiplexer {entry.Index} ({entry.Connection.ClientName}), {entry.Outstanding} outstanding:");
            entry.Multiplexer.GetStatus(log);
        }
    }

    public override string ToString() => $"RedisPoolKit pool '{_pool.Name}' ({_set.Count} multiplexers)";

    /// <summary>Does nothing: the pool owns its connections. Callers such as Microsoft.Extensions.Caching.StackExchangeRedis dispose whatever multiplexer they are handed.</summary>
    public void Close(bool allowCommandsToComplete = true)
    {
    }

    /// <inheritdoc cref="Close(bool)"/>
    public Task CloseAsync(bool allowCommandsToComplete = true) => Task.CompletedTask;

    /// <inheritdoc cref="Close(bool)"/>
    public void Dispose()
    {
    }

    /// <inheritdoc cref="Close(bool)"/>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void OnAdded(MultiplexerEntry entry)
    {
        var multiplexer = entry.Multiplexer;
        _subscriptions.OnMemberAdded(multiplexer);
        _connectionFailed.Attach(multiplexer);
        _connectionRestored.Attach(multiplexer);
        _errorMessage.Attach(multiplexer);
        _internalError.Attach(multiplexer);
        _configurationChanged.Attach(multiplexer);
        _configurationChangedBroadcast.Attach(multiplexer);
        _hashSlotMoved.Attach(multiplexer);
        _serverMaintenanceEvent.Attach(multiplexer);
    }

    private void OnRemoved(MultiplexerEntry entry)
    {
        var multiplexer = entry.Multiplexer;
        _subscriptions.OnMemberRemoved(multiplexer, closing: _set.IsDisposed);
        _connectionFailed.Detach(multiplexer);
        _connectionRestored.Detach(multiplexer);
        _errorMessage.Detach(multiplexer);
        _internalError.Detach(multiplexer);
        _configurationChanged.Detach(multiplexer);
        _configurationChangedBroadcast.Detach(multiplexer);
        _hashSlotMoved.Detach(multiplexer);
        _serverMaintenanceEvent.Detach(multiplexer);
    }

    /// <summary>Relays one event of every member to the facade's subscribers, with the facade as sender.</summary>
    private sealed class EventRelay<TArgs>
    {
        private readonly object _sender;
        private readonly Action<IConnectionMultiplexer, EventHandler<TArgs>> _attach;
        private readonly Action<IConnectionMultiplexer, EventHandler<TArgs>> _detach;
        private readonly EventHandler<TArgs> _relay;
        private EventHandler<TArgs>? _handlers;

        public EventRelay(object sender, Action<IConnectionMultiplexer, EventHandler<TArgs>> attach, Action<IConnectionMultiplexer, EventHandler<TArgs>> detach)
        {
            _sender = sender;
            _attach = attach;
            _detach = detach;
            _relay = (_, args) => Volatile.Read(ref _handlers)?.Invoke(_sender, args);
        }

        public void Add(EventHandler<TArgs>? handler)
        {
            EventHandler<TArgs>? seen, next;
            do
            {
                seen = Volatile.Read(ref _handlers);
                next = (EventHandler<TArgs>?)Delegate.Combine(seen, handler);
            }
            while (Interlocked.CompareExchange(ref _handlers, next, seen) != seen);
        }

        public void Remove(EventHandler<TArgs>? handler)
        {
            EventHandler<TArgs>? seen, next;
            do
            {
                seen = Volatile.Read(ref _handlers);
                next = (EventHandler<TArgs>?)Delegate.Remove(seen, handler);
            }
            while (Interlocked.CompareExchange(ref _handlers, next, seen) != seen);
        }

        public void Attach(IConnectionMultiplexer multiplexer) => _attach(multiplexer, _relay);

        public void Detach(IConnectionMultiplexer multiplexer) => _detach(multiplexer, _relay);
    }
}
