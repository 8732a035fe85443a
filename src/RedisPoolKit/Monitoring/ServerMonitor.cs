using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Reads every node's client counters every <see cref="RedisPoolMonitorOptions.PollInterval"/> over a socket the
/// pool already holds there, and reports when a node's utilization crosses
/// <see cref="RedisPoolMonitorOptions.WarningUtilization"/> or <see cref="RedisPoolMonitorOptions.CriticalUtilization"/>,
/// either way. A standalone server is one node.
/// </summary>
/// <remarks>
/// <para>
/// Each node has its own level. A level is entered as soon as its threshold is reached, but left only once
/// utilization falls <see cref="Hysteresis"/> below it, so a node hovering at a threshold raises one event, not
/// one per poll. The pool's <see cref="Level"/> is its worst node's: one full node is enough to stop the pool
/// growing, because every new multiplexer opens a socket on every node.
/// </para>
/// <para>
/// A node that stops answering keeps its last reading (its <see cref="RedisServerUtilization.Timestamp"/> says
/// how old); a node that leaves the topology is forgotten.
/// </para>
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
    private IReadOnlyDictionary<string, Node> _nodes = new Dictionary<string, Node>(StringComparer.Ordinal);
    private IReadOnlyDictionary<string, RedisServerUtilization> _readings = new Dictionary<string, RedisServerUtilization>(StringComparer.Ordinal);
    private RedisServerUtilization? _last;
    private int _level;
    private int _disposed;

    /// <summary>Creates a monitor that reads over <paramref name="multiplexers"/>: the pool's connected shared multiplexers (admin mode on), none when none is.</summary>
    public ServerMonitor(string poolName, RedisPoolMonitorOptions options, Func<IEnumerable<IConnectionMultiplexer>> multiplexers, TimeProvider timeProvider, ILogger logger)
        : this(poolName, options, new RedisServerCounterReader(multiplexers, poolName, logger, options.MaxClients), timeProvider, logger)
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

    /// <summary>Raised after a reading moved a node's utilization into another level. Handlers run on the monitor's poll; keep them short.</summary>
    public event EventHandler<RedisServerUtilizationEventArgs>? UtilizationChanged;

    /// <summary>The worst node's latest reading: the node in the highest level, and of those the most utilized.</summary>
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

    /// <summary>The pool's level: its worst node's.</summary>
    public RedisServerUtilizationLevel Level => (RedisServerUtilizationLevel)Volatile.Read(ref _level);

    /// <summary>The latest reading of every node read so far, keyed by "host:port" (<see cref="RedisConnectionFactory.Format"/>).</summary>
    public IReadOnlyDictionary<string, RedisServerUtilization> Nodes => Volatile.Read(ref _readings);

    /// <summary>The level of <paramref name="node"/> ("host:port"), <see cref="RedisServerUtilizationLevel.Normal"/> for a node never read.</summary>
    public RedisServerUtilizationLevel LevelOf(string node) =>
        Volatile.Read(ref _nodes).TryGetValue(node, out var state) ? state.Level : RedisServerUtilizationLevel.Normal;

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
        var readout = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (readout is null)
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

        var now = _timeProvider.GetUtcNow();
        var previousNodes = Volatile.Read(ref _nodes);
        var nodes = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var node in readout.Nodes)
        {
            // A node not read this time (its socket is down) keeps its last reading and level.
            if (previousNodes.TryGetValue(node, out var kept))
            {
                nodes[node] = kept;
            }
        }

        var changes = new List<(ServerCounters Read, RedisServerUtilization Reading, RedisServerUtilizationLevel Previous, RedisServerUtilizationLevel Next)>();
        foreach (var read in readout.Readings)
        {
            var reading = new RedisServerUtilization(read.ConnectedClients, read.MaxClients, read.BlockedClients, read.RejectedConnections, now)
            {
                EndPoint = read.EndPoint,
                ClusterConnections = read.ClusterConnections,
            };
            var previous = previousNodes.TryGetValue(read.EndPoint, out var before) ? before.Level : RedisServerUtilizationLevel.Normal;
            var next = reading.Utilization is { } utilization
                ? NextLevel(previous, utilization, _options.WarningUtilization, _options.CriticalUtilization)
                : previous;
            nodes[read.EndPoint] = new Node(reading, next);
            if (next != previous)
            {
                changes.Add((read, reading, previous, next));
            }
        }

        var worst = Worst(nodes.Values);
        lock (_lastLock)
        {
            Volatile.Write(ref _nodes, nodes);
            Volatile.Write(ref _readings, nodes.ToDictionary(pair => pair.Key, pair => pair.Value.Reading, StringComparer.Ordinal));
            _last = worst?.Reading ?? _last;
        }

        // The pool's level moves before the events: a handler that asks the pool sees the level the event reports.
        Volatile.Write(ref _level, (int)(worst?.Level ?? RedisServerUtilizationLevel.Normal));
        foreach (var (read, reading, previous, next) in changes)
        {
            Log.UtilizationLevelChanged(_logger, next > previous ? LogLevel.Warning : LogLevel.Information, _poolName, read.EndPoint, reading.Utilization ?? 0, reading.ConnectedClients + reading.ClusterConnections, reading.MaxClients ?? 0, reading.BlockedClients, previous, next);
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
        }

        return readout.Readings.Count == 0 ? null : worst?.Reading;
    }

    /// <summary>The node in the highest level, and of those the most utilized (a node without utilization counts as least).</summary>
    internal static Node? Worst(IEnumerable<Node> nodes)
    {
        Node? worst = null;
        foreach (var node in nodes)
        {
            if (worst is null
                || node.Level > worst.Level
                || (node.Level == worst.Level && (node.Reading.Utilization ?? -1) > (worst.Reading.Utilization ?? -1)))
            {
                worst = node;
            }
        }

        return worst;
    }

    /// <summary>One node's latest reading and the level it put the node in.</summary>
    internal sealed record Node(RedisServerUtilization Reading, RedisServerUtilizationLevel Level);
}
