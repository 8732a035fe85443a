using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// Keeps one instance within its share of the fleet's budget: a heartbeat every
/// <see cref="RedisPoolFleetOptions.HeartbeatInterval"/> (shortened by up to a fifth at random) renews the instance's
/// registration and reads the live instances; the share follows from them (<see cref="FleetShare"/>) and is handed to
/// the pool, which shrinks or grows to it. The one place the effective budget is decided.
/// </summary>
internal sealed class FleetCoordinator : IAsyncDisposable
{
    // Disposal removes the registration within this, or leaves it to expire after InstanceTtl.
    private static readonly TimeSpan s_deregisterTimeout = TimeSpan.FromSeconds(2);

    private readonly string _poolName;
    private readonly RedisPoolFleetOptions _options;
    private readonly string _instanceId;
    private readonly int _ownMax;
    private readonly int _floor;
    private readonly IFleetRegistry _registry;
    private readonly Action<int> _apply;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Func<double> _random;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private Task? _loop;
    private int _limit;
    private int _instances;
    private int _rank = -1;
    private bool _critical;
    private bool _seen;
    private bool _failing;
    private long _lastSuccess;
    private long _changes;
    private (int Share, long Since)? _growing;

    public FleetCoordinator(
        string poolName,
        RedisPoolFleetOptions options,
        string instanceId,
        int ownMax,
        int floor,
        IFleetRegistry registry,
        Action<int> apply,
        TimeProvider timeProvider,
        ILogger logger,
        Func<double>? random = null)
    {
        _poolName = poolName;
        _options = options;
        _instanceId = instanceId;
        _ownMax = ownMax;
        _floor = Math.Min(floor, ownMax);
        _registry = registry;
        _apply = apply;
        _timeProvider = timeProvider;
        _logger = logger;
        _random = random ?? Random.Shared.NextDouble;

        // Until it has seen the fleet an instance holds only what it needs to work: a deploy surge of new instances
        // never opens their full MaxConnections before their first heartbeat.
        _limit = _floor;
        _apply(_limit);
    }

    /// <summary>The sockets this instance may hold now (what the budget enforces).</summary>
    public int Limit => Volatile.Read(ref _limit);

    /// <summary>Live instances seen at the last heartbeat, this one included; 0 before the first.</summary>
    public int Instances => Volatile.Read(ref _instances);

    /// <summary>Times the effective budget changed since the pool started.</summary>
    public long Changes => Interlocked.Read(ref _changes);

    public int FleetMaxConnections => _options.MaxConnections;

    /// <summary>The wait before the next heartbeat: the interval shortened by up to a fifth (<paramref name="random"/> in [0, 1)).</summary>
    internal static TimeSpan NextDelay(TimeSpan interval, double random) =>
        interval - (interval * (RedisPoolFleetDefaults.HeartbeatJitter * random));

    /// <summary>Starts the heartbeat (first one now) once the pool holds a socket to send it on; later calls do nothing.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_loop is null && !_stopping.IsCancellationRequested)
            {
                using (ExecutionContext.SuppressFlow())
                {
                    _loop = Task.Run(() => RunAsync(_stopping.Token));
                }
            }
        }
    }

    /// <summary>Follows the server monitor: at critical utilization the share is halved (never below what the instance needs).</summary>
    public void OnUtilizationChanged(RedisServerUtilizationLevel level)
    {
        lock (_lock)
        {
            _critical = level == RedisServerUtilizationLevel.Critical;
            if (_seen)
            {
                ProposeLocked(FleetShare.Compute(_options.MaxConnections, _instances, _rank, _floor, _ownMax, _critical), _critical ? "server at critical utilization" : "server utilization no longer critical");
            }
        }
    }

    /// <summary>One heartbeat: renew, read, recompute. The loop calls it; unit tests call it directly too.</summary>
    internal async Task BeatAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? members;
        try
        {
            // Bounded: a heartbeat stuck on a busy or half-open socket must not stop the ones after it.
            members = await _registry.HeartbeatAsync(cancellationToken).WaitAsync(_options.HeartbeatInterval, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            OnFailed(ex.Message, ex);
            return;
        }

        if (members is null)
        {
            OnFailed("no socket of the pool is connected", null);
            return;
        }

        lock (_lock)
        {
            if (_failing)
            {
                _failing = false;
                Log.FleetHeartbeatRestored(_logger, _poolName, members.Count);
            }

            _lastSuccess = _timeProvider.GetTimestamp();
            _seen = true;
            var previous = _instances;
            _instances = Math.Max(1, members.Count);
            _rank = FleetShare.Rank(members, _instanceId);
            if (previous != _instances && _floor * _instances > _options.MaxConnections)
            {
                Log.FleetOverCommitted(_logger, _poolName, _instances, _floor, _floor * _instances, _options.MaxConnections);
            }

            ProposeLocked(
                FleetShare.Compute(_options.MaxConnections, _instances, _rank, _floor, _ownMax, _critical),
                previous == _instances ? $"{_instances} instances registered" : $"{_instances} instances registered (were {previous})");
        }
    }

    private void OnFailed(string cause, Exception? exception)
    {
        lock (_lock)
        {
            if (!_failing)
            {
                _failing = true;
                Log.FleetHeartbeatFailed(_logger, _poolName, cause, exception);
            }

            // Its registration has expired on the server by now: the others count without it, so it must not hold
            // more than it needs until it is registered again.
            if (_seen && _timeProvider.GetElapsedTime(_lastSuccess) >= _options.InstanceTtl)
            {
                _seen = false;
                _instances = 0;
                _growing = null;
                SetLimitLocked(_floor, $"no heartbeat for 'Fleet.InstanceTtl' ({RedisPoolOptionsValidator.Format(_options.InstanceTtl)}): its registration has expired");
            }
        }
    }

    /// <summary>
    /// Shrinks at once; grows only to a share seen on every heartbeat for at least one interval. Every other live
    /// instance heartbeats within an interval, so by then each has seen this instance (a newcomer) or the change that
    /// freed the room: growing on a count the others have not seen yet is how a fleet overshoots.
    /// </summary>
    private void ProposeLocked(int share, string reason)
    {
        if (share <= _limit)
        {
            _growing = null;
            SetLimitLocked(share, reason);
            return;
        }

        var now = _timeProvider.GetTimestamp();
        if (_growing is not { } pending)
        {
            _growing = (share, now);
            _apply(_limit);
            return;
        }

        var target = Math.Min(pending.Share, share);
        if (_timeProvider.GetElapsedTime(pending.Since, now) >= _options.HeartbeatInterval)
        {
            _growing = null;
            SetLimitLocked(target, reason);
        }
        else
        {
            _growing = (target, pending.Since);
            _apply(_limit);
        }
    }

    private void SetLimitLocked(int limit, string reason)
    {
        var previous = _limit;
        Volatile.Write(ref _limit, limit);
        if (previous != limit)
        {
            Interlocked.Increment(ref _changes);
            Log.FleetShareChanged(_logger, _poolName, previous, limit, _instances, _options.MaxConnections, reason);
        }

        // Applied every time, not only on a change: a lease returned or a member added since may have left the pool above it.
        _apply(limit);
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                // Timed from the start of a heartbeat: a slow round trip does not stretch the gap the TTL must cover.
                var next = Task.Delay(NextDelay(_options.HeartbeatInterval, _random()), _timeProvider, stopping);
                await BeatAsync(stopping).ConfigureAwait(false);
                await next.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>Stops the heartbeat without removing the registration: what a killed process leaves behind (tests).</summary>
    internal async Task HaltAsync()
    {
        Task? loop;
        lock (_lock)
        {
            _stopping.Cancel();
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Stops the heartbeat and removes the registration (bounded), so the others grow back at their next heartbeat.</summary>
    public async ValueTask DisposeAsync()
    {
        bool started;
        lock (_lock)
        {
            started = _loop is not null && !_stopping.IsCancellationRequested;
        }

        await HaltAsync().ConfigureAwait(false);
        if (started)
        {
            try
            {
                using var timeout = new CancellationTokenSource(s_deregisterTimeout, _timeProvider);
                await _registry.DeregisterAsync(timeout.Token).ConfigureAwait(false);
                Log.FleetDeregistered(_logger, _poolName, _instanceId);
            }
#pragma warning disable CA1031 // The registration expires after InstanceTtl anyway; disposal must not fail over it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.FleetDeregisterFailed(_logger, _poolName, _instanceId, _options.InstanceTtl.TotalSeconds, ex);
            }
        }

        _stopping.Dispose();
    }
}
