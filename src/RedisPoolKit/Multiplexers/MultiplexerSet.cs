using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// The pool's shared multiplexers, <c>MinMultiplexers..MaxMultiplexers</c> of them, one socket each: it holds the
/// members, picks the least busy one for a command, connects the first one on demand and adds or retires members
/// when its <see cref="MultiplexerScaler"/> says so.
/// </summary>
internal sealed class MultiplexerSet : IAsyncDisposable
{
    private readonly RedisPoolOptions _options;
    private readonly Func<int, CancellationToken, Task<PooledConnection>> _connect;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _adder = new(1, 1);
    private readonly CancellationTokenSource _disposing = new();
    private readonly object _lock = new();

    // Members out of the set whose commands are still finishing: disposal closes them without waiting further.
    private readonly List<MultiplexerEntry> _retiring = [];
    private volatile MultiplexerEntry[] _entries = [];
    private Task<MultiplexerEntry>? _firstConnect;
    private int _nextIndex;

    public MultiplexerSet(RedisPoolOptions options, RedisConnectionFactory factory, TimeProvider timeProvider, ILogger logger)
        : this(options, (index, cancellationToken) => factory.ConnectAsync(SocketRole.Multiplexer, index, cancellationToken), timeProvider, logger)
    {
    }

    /// <summary>The seam unit tests use: <paramref name="connect"/> opens the socket of member <c>index</c>.</summary>
    internal MultiplexerSet(RedisPoolOptions options, Func<int, CancellationToken, Task<PooledConnection>> connect, TimeProvider timeProvider, ILogger logger)
    {
        _options = options;
        _connect = connect;
        _timeProvider = timeProvider;
        _logger = logger;
        Scaler = new MultiplexerScaler(this, options, timeProvider, _disposing.Token);
    }

    /// <summary>Decides when a member is added or retired.</summary>
    public MultiplexerScaler Scaler { get; }

    /// <summary>Raised after a member joins; the facade attaches its event forwarding here.</summary>
    public event Action<MultiplexerEntry>? Added;

    /// <summary>Raised after a member leaves.</summary>
    public event Action<MultiplexerEntry>? Removed;

    public IReadOnlyList<MultiplexerEntry> Entries => _entries;

    public int Count => _entries.Length;

    /// <summary>True once disposal began: members leaving now are not replaced.</summary>
    public bool IsDisposed => _disposing.IsCancellationRequested;

    /// <summary>
    /// The least-outstanding connected member, or null when none exists yet. Only picks: routing reports the load
    /// of its pick to <see cref="Scaler"/>.
    /// </summary>
    public MultiplexerEntry? TryPick()
    {
        var entries = _entries;
        if (entries.Length == 1)
        {
            return entries[0];
        }

        if (entries.Length == 0)
        {
            return null;
        }

        MultiplexerEntry? best = null;
        var bestOutstanding = int.MaxValue;
        foreach (var entry in entries)
        {
            var outstanding = entry.Outstanding;
            if (outstanding < bestOutstanding && entry.IsConnected)
            {
                best = entry;
                bestOutstanding = outstanding;
            }
        }

        // None connected: let StackExchange.Redis fail fast on any of them rather than wait here.
        return best ?? entries[0];
    }

    /// <summary>The member that has been in the set longest; scale-in never retires it (only a failure does).</summary>
    public MultiplexerEntry? Oldest => _entries is [var first, ..] ? first : null;

    /// <summary>A member, connecting the first one when none exists (bounded by ConnectTimeout).</summary>
    public ValueTask<MultiplexerEntry> PickAsync(CancellationToken cancellationToken)
    {
        var picked = TryPick();
        return picked is not null ? new ValueTask<MultiplexerEntry>(picked) : new ValueTask<MultiplexerEntry>(FirstConnectAsync(cancellationToken));
    }

    /// <summary>Connects members until <c>MinMultiplexers</c> exist.</summary>
    public async Task EnsureMinimumAsync(CancellationToken cancellationToken)
    {
        if (Count == 0)
        {
            await FirstConnectAsync(cancellationToken).ConfigureAwait(false);
        }

        while (Count < _options.MinMultiplexers)
        {
            await AddAsync("MinMultiplexers", _options.MinMultiplexers, cancellationToken).ConfigureAwait(false);
        }

        Scaler.Start();
    }

    private Task<MultiplexerEntry> FirstConnectAsync(CancellationToken cancellationToken)
    {
        Task<MultiplexerEntry> shared;
        lock (_lock)
        {
            if (_entries.Length > 0)
            {
                return Task.FromResult(_entries[0]);
            }

            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);

            // Callers arriving together share one connect, so a cold burst opens one socket, not one each. One that
            // completed is stale here: it failed, or its member has left since (none is left).
            if (_firstConnect is not { IsCompleted: false })
            {
                _firstConnect = FirstConnectCoreAsync();
            }

            shared = _firstConnect;
        }

        return shared.WaitAsync(cancellationToken);
    }

    private async Task<MultiplexerEntry> FirstConnectCoreAsync()
    {
        MultiplexerEntry? entry = null;
        while (entry is null)
        {
            // Null from AddAsync: a warm-up added the first member meanwhile (which may even have left again since).
            entry = await AddAsync("first use", 1, _disposing.Token).ConfigureAwait(false) ?? Oldest;
        }

        Scaler.Start();
        return entry;
    }

    /// <summary>
    /// Connects one member unless <paramref name="target"/> members already exist once it is this caller's turn
    /// (then null): warm-up, refill and scale-up can race, and only the check behind the adder keeps the set at
    /// or below its bounds.
    /// </summary>
    internal async Task<MultiplexerEntry?> AddAsync(string reason, int target, CancellationToken cancellationToken)
    {
        await _adder.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
            if (Count >= target)
            {
                return null;
            }

            var index = Interlocked.Increment(ref _nextIndex) - 1;
            var connection = await _connect(index, cancellationToken).ConfigureAwait(false);
            var entry = new MultiplexerEntry(connection) { LastBusyTimestamp = _timeProvider.GetTimestamp() };
            lock (_lock)
            {
                if (_disposing.IsCancellationRequested)
                {
                    _ = connection.DisposeAsync().AsTask();
                    throw new ObjectDisposedException(nameof(MultiplexerSet));
                }

                _entries = [.. _entries, entry];
            }

            Log.MultiplexerAdded(_logger, _options.Name, index, Count, reason);
            Added?.Invoke(entry);
            return entry;
        }
        finally
        {
            _adder.Release();
        }
    }

    /// <summary>
    /// Takes every member connected to <paramref name="node"/> out of the set at once (each is closed once its
    /// commands have finished); commands routed from now on go to members connected wherever the factory points.
    /// </summary>
    /// <returns>How many members were retired.</returns>
    internal int RetireNode(string node, string reason)
    {
        var retired = 0;
        foreach (var entry in _entries)
        {
            if (entry.Connection.Node == node)
            {
                _ = RetireAsync(entry, reason);
                retired++;
            }
        }

        return retired;
    }

    /// <summary>Takes <paramref name="entry"/> out of the set, then closes it once the commands on it have finished.</summary>
    internal async Task RetireAsync(MultiplexerEntry entry, string reason)
    {
        lock (_lock)
        {
            if (Array.IndexOf(_entries, entry) < 0)
            {
                return;
            }

            _entries = [.. _entries.Where(e => e != entry)];
            _retiring.Add(entry);
            entry.MarkRetired();
        }

        Log.MultiplexerRetired(_logger, _options.Name, entry.Index, Count, reason);
        Removed?.Invoke(entry);

        // Commands already routed to it finish first (bounded: FailFast and the async timeout end them).
        await entry.Drained.WaitAsync(_options.ShutdownGracePeriod, _timeProvider).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        try
        {
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            entry.MarkClosed();
        }

        lock (_lock)
        {
            _retiring.Remove(entry);
        }
    }

    public async ValueTask DisposeAsync()
    {
        MultiplexerEntry[] entries;
        MultiplexerEntry[] retiring;
        lock (_lock)
        {
            if (_disposing.IsCancellationRequested)
            {
                return;
            }

            _disposing.Cancel();
            entries = _entries;
            _entries = [];
            retiring = [.. _retiring];
        }

        Scaler.Dispose();

        foreach (var entry in entries)
        {
            Removed?.Invoke(entry);
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
            entry.MarkClosed();
        }

        // Retiring members had the pool's grace period while admission drained: close them now, not after the set is gone.
        foreach (var entry in retiring)
        {
            entry.StopWaitingForDrain();
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
            entry.MarkClosed();
        }

        // A connect in flight holds its budget until it completes; wait for the adder to go quiet.
        await _adder.WaitAsync(_options.ConnectTimeout + TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
    }
}
