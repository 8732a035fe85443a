using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Reads the server's client counters every <see cref="RedisPoolMonitorOptions.PollInterval"/> over a socket the
/// pool already holds, and reports when utilization crosses <see cref="RedisPoolMonitorOptions.WarningUtilization"/>
/// or <see cref="RedisPoolMonitorOptions.CriticalUtilization"/>, either way.
/// </summary>
/// <remarks>
/// A level is entered as soon as its threshold is reached, but left only once utilization falls
/// <see cref="Hysteresis"/> below it, so a server hovering at a threshold raises one event, not one per poll.
/// </remarks>
internal sealed class ServerMonitor : IAsyncDisposable
{
    /// <summary>
    /// How far below a threshold utilization must fall to leave its level: 5 percentage points, one client in
    /// twenty. Smaller would flap on a server whose client count moves by one or two; larger would keep a
    /// recovered server flagged too long.
    /// </summary>
    public const double Hysteresis = 0.05;

    private readonly string _poolName;
    private readonly RedisPoolMonitorOptions _options;
    private readonly IServerCounterReader _reader;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _lastLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private ITimer? _timer;
    private Task _tick = Task.CompletedTask;
    private RedisServerUtilization? _last;
    private int _level;
    private int _disposed;

    /// <summary>Creates a monitor that reads over <paramref name="multiplexer"/>: a connected shared multiplexer with admin mode, or <see langword="null"/> when none is.</summary>
    public ServerMonitor(string poolName, RedisPoolMonitorOptions options, Func<IConnectionMultiplexer?> multiplexer, TimeProvider timeProvider, ILogger logger)
        : this(poolName, options, new RedisServerCounterReader(multiplexer, poolName, logger, options.MaxClients), timeProvider, logger)
    {
    }

    internal ServerMonitor(string poolName, RedisPoolMonitorOptions options, IServerCounterReader reader, TimeProvider timeProvider, ILogger logger)
    {
        _poolName = poolName;
        _options = options;
        _reader = reader;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Raised after a reading moved utilization into another level. Handlers run on the monitor's poll; keep them short.</summary>
    public event EventHandler<RedisServerUtilizationEventArgs>? UtilizationChanged;

    /// <summary>The last successful reading.</summary>
    public RedisServerUtilization? Last
    {
        get
        {
            lock (_lastLock)
            {
                return _last;
            }
        }
    }

    public RedisServerUtilizationLevel Level => (RedisServerUtilizationLevel)Volatile.Read(ref _level);

    /// <summary>Why the monitor can take no reading at all (the server refuses <c>INFO</c>), or <see langword="null"/>.</summary>
    public string? Unavailable => _reader.Unavailable;

    /// <summary>Starts polling every <see cref="RedisPoolMonitorOptions.PollInterval"/>; the first reading comes one interval from now.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_timer is not null)
        {
            return;
        }

        // The timer must not capture the AsyncLocals (activities, scopes) of whoever started the pool.
        using (ExecutionContext.SuppressFlow())
        {
            _timer = _timeProvider.CreateTimer(static state => ((ServerMonitor)state!).OnTick(), this, _options.PollInterval, _options.PollInterval);
        }
    }

    /// <summary>Reads the counters once and raises <see cref="UtilizationChanged"/> when the level changed. Returns the reading, or <see langword="null"/> when none could be taken.</summary>
    public async Task<RedisServerUtilization?> PollOnceAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await PollCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The level after <paramref name="current"/> for <paramref name="utilization"/>: up at once, down only <see cref="Hysteresis"/> below the threshold left.</summary>
    internal static RedisServerUtilizationLevel NextLevel(RedisServerUtilizationLevel current, double utilization, double warning, double critical)
    {
        var reached = utilization >= critical ? RedisServerUtilizationLevel.Critical
            : utilization >= warning ? RedisServerUtilizationLevel.Warning
            : RedisServerUtilizationLevel.Normal;
        if (reached >= current)
        {
            return reached;
        }

        var level = current;
        while (level > reached && utilization < Threshold(level) - Hysteresis)
        {
            level--;
        }

        return level;

        double Threshold(RedisServerUtilizationLevel l) => l == RedisServerUtilizationLevel.Critical ? critical : warning;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _tick.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The poll was stopped by the cancellation above.
        }

        _stopping.Dispose();
    }

    private void OnTick()
    {
        // A poll slower than the interval skips the next tick rather than piling up.
        if (Volatile.Read(ref _disposed) != 0 || !_gate.Wait(0))
        {
            return;
        }

        _tick = TickAsync();
    }

    private async Task TickAsync()
    {
        try
        {
            await PollCoreAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposing.
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            var cause = ExceptionText.Brief(ex);
            Log.MonitorPollFailed(_logger, _poolName, cause);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<RedisServerUtilization?> PollCoreAsync(CancellationToken cancellationToken)
    {
        var counters = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (counters is not { } read)
        {
            if (_reader.Unavailable is null)
            {
                Log.MonitorNoConnection(_logger, _poolName);
            }
            else if (_timer is { } timer)
            {
                // Said once when it was found out; polling a server that refuses INFO would only repeat it.
                await timer.DisposeAsync().ConfigureAwait(false);
            }

            return null;
        }

        var reading = new RedisServerUtilization(read.ConnectedClients, read.MaxClients, read.BlockedClients, read.RejectedConnections, _timeProvider.GetUtcNow());
        lock (_lastLock)
        {
            _last = reading;
        }

        if (reading.Utilization is not { } utilization)
        {
            return reading;
        }

        var previous = Level;
        var next = NextLevel(previous, utilization, _options.WarningUtilization, _options.CriticalUtilization);
        if (next == previous)
        {
            return reading;
        }

        Volatile.Write(ref _level, (int)next);
        Log.UtilizationLevelChanged(_logger, next > previous ? LogLevel.Warning : LogLevel.Information, _poolName, read.EndPoint, utilization, reading.ConnectedClients, reading.MaxClients ?? 0, reading.BlockedClients, previous, next);
        try
        {
            UtilizationChanged?.Invoke(this, new RedisServerUtilizationEventArgs(_poolName, previous, next, reading));
        }
#pragma warning disable CA1031 // A subscriber's bug must not stop the monitor.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.MonitorHandlerFailed(_logger, _poolName, ex.GetType().Name);
        }

        return reading;
    }
}
