using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// The pool's shared multiplexers: <c>MinMultiplexers..MaxMultiplexers</c>, one socket each. Commands go to
/// the least-outstanding member by the pool's own counters. A member is added only on measured saturation,
/// one creation at a time, within the budget; idle extras are retired; a member that fails for good is replaced.
/// </summary>
internal sealed class MultiplexerSet : IAsyncDisposable
{
    /// <summary>
    /// Outstanding commands on the least busy member above which it counts as saturated. One multiplexer
    /// pipelines thousands of commands; on 2 cores a second one costs throughput (DESIGN.md 2.12), so only a
    /// deep, sustained backlog justifies it.
    /// </summary>
    internal const int SaturationOutstanding = 256;

    /// <summary>How long a saturated member must stay saturated before another one is added.</summary>
    internal static readonly TimeSpan SaturationPeriod = TimeSpan.FromSeconds(1);

    /// <summary>An extra member idle (below 1/8 of the saturation mark) this long is retired.</summary>
    internal static readonly TimeSpan ScaleInIdle = TimeSpan.FromSeconds(60);

    internal static readonly TimeSpan MaintenanceInterval = TimeSpan.FromSeconds(1);

    private readonly RedisPoolOptions _options;
    private readonly RedisConnectionFactory _factory;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _adder = new(1, 1);
    private readonly CancellationTokenSource _disposing = new();
    private readonly object _lock = new();
    private volatile MultiplexerEntry[] _entries = [];
    private Task<MultiplexerEntry>? _firstConnect;
    private ITimer? _maintenance;
    private long _saturatedSince;
    private int _nextIndex;
    private int _adding;

    public MultiplexerSet(RedisPoolOptions options, RedisConnectionFactory factory, TimeProvider timeProvider, ILogger logger)
    {
        _options = options;
        _factory = factory;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Raised after a member joins; the facade attaches its event forwarding here.</summary>
    public event Action<MultiplexerEntry>? Added;

    /// <summary>Raised after a member leaves.</summary>
    public event Action<MultiplexerEntry>? Removed;

    public IReadOnlyList<MultiplexerEntry> Entries => _entries;

    public int Count => _entries.Length;

    /// <summary>True once disposal began: members leaving now are not replaced.</summary>
    public bool IsDisposed => _disposing.IsCancellationRequested;

    /// <summary>Set while the server is at critical utilization or the breaker is open: no scale-up.</summary>
    public bool GrowthSuspended { get; set; }

    /// <summary>The least-outstanding connected member, or null when none exists yet.</summary>
    public MultiplexerEntry? TryPick()
    {
        var entries = _entries;
        if (entries.Length == 1)
        {
            var only = entries[0];
            if (only.Outstanding >= SaturationOutstanding)
            {
                OnSaturated();
            }

            return only;
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

        if (best is null)
        {
            // None connected: let StackExchange.Redis fail fast on any of them rather than wait here.
            return entries[0];
        }

        if (bestOutstanding >= SaturationOutstanding)
        {
            OnSaturated();
        }

        return best;
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

        StartMaintenance();
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

        StartMaintenance();
        return entry;
    }

    /// <summary>
    /// Connects one member unless <paramref name="target"/> members already exist once it is this caller's turn
    /// (then null): warm-up, refill and scale-up can race, and only the check behind the adder keeps the set at
    /// or below its bounds.
    /// </summary>
    private async Task<MultiplexerEntry?> AddAsync(string reason, int target, CancellationToken cancellationToken)
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
            var connection = await _factory.ConnectAsync(SocketRole.Multiplexer, index, cancellationToken).ConfigureAwait(false);
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

    private void OnSaturated()
    {
        var now = _timeProvider.GetTimestamp();
        var since = Interlocked.Read(ref _saturatedSince);
        if (since == 0)
        {
            Interlocked.CompareExchange(ref _saturatedSince, now, 0);
            return;
        }

        if (_timeProvider.GetElapsedTime(since, now) < SaturationPeriod || GrowthSuspended || Count >= _options.MaxMultiplexers)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _adding, 1, 0) == 0)
        {
            _ = ScaleUpAsync();
        }
    }

    private async Task ScaleUpAsync()
    {
        try
        {
            await AddAsync($"the least busy multiplexer had {SaturationOutstanding}+ commands outstanding for {SaturationPeriod.TotalSeconds:F0} s", _options.MaxMultiplexers, _disposing.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisPoolException or ObjectDisposedException or OperationCanceledException)
        {
            // Budget, breaker or disposal said no: keep serving on the members we have.
        }
        finally
        {
            Interlocked.Exchange(ref _saturatedSince, 0);
            Volatile.Write(ref _adding, 0);
        }
    }

    private void StartMaintenance()
    {
        if (_maintenance is not null || _disposing.IsCancellationRequested)
        {
            return;
        }

        lock (_lock)
        {
            if (_maintenance is null && !_disposing.IsCancellationRequested)
            {
                using (ExecutionContext.SuppressFlow())
                {
                    _maintenance = _timeProvider.CreateTimer(static s => ((MultiplexerSet)s!).Maintain(), this, MaintenanceInterval, MaintenanceInterval);
                }
            }
        }
    }

    private void Maintain()
    {
        if (_disposing.IsCancellationRequested)
        {
            return;
        }

        var now = _timeProvider.GetTimestamp();
        var entries = _entries;
        var saturated = entries.Length > 0;
        foreach (var entry in entries)
        {
            if (entry.Outstanding >= SaturationOutstanding / 8)
            {
                entry.LastBusyTimestamp = now;
            }

            saturated &= entry.Outstanding >= SaturationOutstanding;
        }

        if (!saturated)
        {
            Interlocked.Exchange(ref _saturatedSince, 0);
        }

        // A member disposed under us (it failed for good) is replaced; min members are kept.
        var broken = entries.FirstOrDefault(e => e.Connection.IsDisposed);
        if (broken is not null)
        {
            _ = RetireAsync(broken, "its connection was closed");
        }
        else if (entries.Length > _options.MinMultiplexers)
        {
            var newest = entries[^1];
            if (_timeProvider.GetElapsedTime(newest.LastBusyTimestamp, now) >= ScaleInIdle)
            {
                _ = RetireAsync(newest, $"idle for {ScaleInIdle.TotalSeconds:F0} s");
            }
        }

        if (entries.Length < _options.MinMultiplexers && Interlocked.CompareExchange(ref _adding, 1, 0) == 0)
        {
            _ = RefillAsync();
        }
    }

    private async Task RefillAsync()
    {
        try
        {
            while (Count < _options.MinMultiplexers && !_disposing.IsCancellationRequested)
            {
                await AddAsync("MinMultiplexers", _options.MinMultiplexers, _disposing.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisPoolException or ObjectDisposedException or OperationCanceledException)
        {
            // Retried on the next maintenance tick, under the breaker.
        }
        finally
        {
            Volatile.Write(ref _adding, 0);
        }
    }

    private async Task RetireAsync(MultiplexerEntry entry, string reason)
    {
        lock (_lock)
        {
            if (Array.IndexOf(_entries, entry) < 0)
            {
                return;
            }

            _entries = [.. _entries.Where(e => e != entry)];
        }

        entry.MarkRetired();
        Log.MultiplexerRetired(_logger, _options.Name, entry.Index, Count, reason);
        Removed?.Invoke(entry);

        // Commands already routed to it finish first (bounded: FailFast and the async timeout end them).
        var deadline = _timeProvider.GetTimestamp();
        while (entry.Outstanding > 0 && _timeProvider.GetElapsedTime(deadline) < _options.ShutdownGracePeriod)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _timeProvider).ConfigureAwait(false);
        }

        await entry.Connection.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        MultiplexerEntry[] entries;
        lock (_lock)
        {
            if (_disposing.IsCancellationRequested)
            {
                return;
            }

            _disposing.Cancel();
            entries = _entries;
            _entries = [];
            _maintenance?.Dispose();
        }

        foreach (var entry in entries)
        {
            Removed?.Invoke(entry);
            await entry.Connection.DisposeAsync().ConfigureAwait(false);
        }

        // A connect in flight holds its budget until it completes; wait for the adder to go quiet.
        await _adder.WaitAsync(_options.ConnectTimeout + TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
    }
}
