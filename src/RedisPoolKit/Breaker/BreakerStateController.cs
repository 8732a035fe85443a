using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>What a refused socket creation tells its caller: the state, when to retry, why, and the failure behind it.</summary>
internal readonly record struct BreakerRejection(RedisPoolCircuitState State, TimeSpan RetryAfter, string Reason, Exception? LastFailure);

/// <summary>
/// Holds the breaker's state and makes every transition, under one lock. Methods whose name ends in
/// <c>Locked</c> must be called with the lock held. The whole state machine:
/// <list type="bullet">
/// <item>Closed to Open: <see cref="OnFailureClassified"/>, on a max-clients failure or
/// <see cref="RedisPoolBreakerOptions.ConnectFailureThreshold"/> connect failures in a row.</item>
/// <item>Open to HalfOpen: <see cref="TryHalfOpenLocked"/> only, once the jittered break has elapsed.</item>
/// <item>HalfOpen to Closed or back to Open with the break doubled: <see cref="OnProbeCompleted"/>.</item>
/// <item>HalfOpen to Closed without a probe, when the pool's budget on the server has no room for one:
/// <see cref="OnProbeSkipped"/>. The server's room is then unproven, so the next trip keeps the doubled break
/// until a socket opens.</item>
/// </list>
/// Transitions are reported outside the lock, one at a time and in order, so a handler may call back in.
/// See docs/Architecture.md for the breaker's place in the pool.
/// </summary>
internal sealed class BreakerStateController : IDisposable
{
    private readonly string _poolName;
    private readonly RedisPoolBreakerOptions _options;
    private readonly IReadOnlyList<EndPoint> _endPoints;
    private readonly TimeSpan _probeTimeout;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly Action _startProbe;
    private readonly Action<RedisPoolCircuitStateChangedEventArgs> _onTransition;
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private readonly Queue<RedisPoolCircuitStateChangedEventArgs> _pendingEvents = new();

    private int _state; // RedisPoolCircuitState; written under _lock, read lock-free on the hot path.
    private long _openUntil; // TimeProvider timestamp when the half-open probe is due.
    private long _probeDeadline;
    private TimeSpan _breakDuration;
    private int _failedProbes;
    private int _consecutiveConnectFailures;
    // Closed without a probe: nothing has shown the server has room since the last failed probe or trip.
    private bool _unproven;
    private string _reason = "closed";
    private Exception? _lastFailure;

    // The failure that opened the breaker: each failed probe wraps this one, not the previous probe's, so the chain
    // handed out as RedisPoolCircuitOpenException's inner exception stays two deep however long the outage.
    private Exception? _tripFailure;
    private EndPoint? _failedEndPoint;
    private long _transitions;
    private long _rejected;
    private bool _raisingEvents;
    private bool _disposed;

    // startProbe starts the one half-open probe, whose answer comes back through OnProbeCompleted;
    // onTransition reports each transition, outside the lock and in order.
    public BreakerStateController(
        string poolName,
        RedisPoolBreakerOptions options,
        IReadOnlyList<EndPoint> endPoints,
        TimeSpan probeTimeout,
        TimeProvider timeProvider,
        ILogger logger,
        Random random,
        Action startProbe,
        Action<RedisPoolCircuitStateChangedEventArgs> onTransition)
    {
        _poolName = poolName;
        _options = options;
        _endPoints = endPoints;
        _probeTimeout = probeTimeout;
        _timeProvider = timeProvider;
        _logger = logger;
        _random = random;
        _startProbe = startProbe;
        _onTransition = onTransition;
        _breakDuration = options.BreakDuration;

        using (ExecutionContext.SuppressFlow())
        {
            _timer = timeProvider.CreateTimer(static s => ((BreakerStateController)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    public RedisPoolCircuitState State => (RedisPoolCircuitState)Volatile.Read(ref _state);

    /// <summary>Transitions since the pool started.</summary>
    public long Transitions => Interlocked.Read(ref _transitions);

    /// <summary>Socket creations refused because the breaker was not closed.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>The last classified failure that tripped the breaker or failed a probe.</summary>
    public Exception? LastFailure => Volatile.Read(ref _lastFailure);

    /// <summary>The endpoint whose failure was classified last, probed first; null when none failed.</summary>
    public EndPoint? FailedEndPoint => Volatile.Read(ref _failedEndPoint);

    /// <summary>Where the half-open probe goes: the endpoint that failed, or the first one.</summary>
    public EndPoint ProbeTarget => FailedEndPoint ?? _endPoints[0];

    /// <summary>
    /// A socket was opened: the server is reachable and has slots, so connect failures no longer run in a row, and a
    /// breaker that closed without a probe (<see cref="OnProbeSkipped"/>) starts its next trip from the configured break.
    /// </summary>
    public void OnSocketOpened()
    {
        if (Volatile.Read(ref _consecutiveConnectFailures) == 0 && !Volatile.Read(ref _unproven))
        {
            return;
        }

        lock (_lock)
        {
            _consecutiveConnectFailures = 0;
            if (_unproven && State == RedisPoolCircuitState.Closed)
            {
                _unproven = false;
                _failedProbes = 0;
                _breakDuration = _options.BreakDuration;
            }
        }
    }

    /// <summary>True after <see cref="OnProbeSkipped"/> until a socket opens or the breaker trips: the next trip keeps the doubled break.</summary>
    public bool Unproven => Volatile.Read(ref _unproven);

    /// <summary>The break the next trip or failed probe waits (before jitter).</summary>
    public TimeSpan BreakDuration
    {
        get
        {
            lock (_lock)
            {
                return _breakDuration;
            }
        }
    }

    /// <summary>
    /// The pool's server was replaced by another (a Sentinel failover): what was counted against the old one says
    /// nothing of the new one. The connect failures start over, the probe goes to the first endpoint again (the new
    /// server), and an open breaker probes it now instead of waiting out a break the old server earned, so a pool
    /// whose master died does not stay open against the dead one.
    /// </summary>
    public void OnServerMoved(string why)
    {
        bool halfOpened;
        lock (_lock)
        {
            _consecutiveConnectFailures = 0;
            _failedEndPoint = null;
            if (_unproven)
            {
                // Unproven was said of the old server.
                _unproven = false;
                _failedProbes = 0;
                _breakDuration = _options.BreakDuration;
            }

            var now = _timeProvider.GetTimestamp();
            if (State == RedisPoolCircuitState.Open && !_disposed)
            {
                _openUntil = now;
            }

            halfOpened = TryHalfOpenLocked(now, why);
        }

        if (halfOpened)
        {
            _startProbe();
            RaisePendingEvents();
        }
    }

    /// <summary>Closed to Open, when <paramref name="classification"/> says so. Returns true when the breaker opened.</summary>
    public bool OnFailureClassified(MaxClientsClassifier.Classification classification, Exception failure)
    {
        bool opened;
        lock (_lock)
        {
            opened = OnFailureClassifiedLocked(classification, failure);
        }

        RaisePendingEvents();
        return opened;
    }

    private bool OnFailureClassifiedLocked(MaxClientsClassifier.Classification classification, Exception failure)
    {
        if (State != RedisPoolCircuitState.Closed || _disposed)
        {
            return false;
        }

        switch (classification.Kind)
        {
            case MaxClientsClassifier.FailureKind.MaxClients:
                _lastFailure = _tripFailure = Failure(classification.Description, failure);
                _failedEndPoint = classification.EndPoint;
                TripLocked($"max-clients: {classification.Description}");
                return true;
            case MaxClientsClassifier.FailureKind.ConnectFailure:
                _consecutiveConnectFailures++;
                _failedEndPoint = classification.EndPoint;
                if (_options.TripOnConnectFailures && _consecutiveConnectFailures >= _options.ConnectFailureThreshold)
                {
                    _lastFailure = _tripFailure = Failure(classification.Description, failure);
                    TripLocked($"{_consecutiveConnectFailures.ToString(CultureInfo.InvariantCulture)} consecutive connect failures ('Breaker.ConnectFailureThreshold' is {_options.ConnectFailureThreshold.ToString(CultureInfo.InvariantCulture)}): {classification.Description}");
                    return true;
                }

                Log.BreakerFailureClassified(_logger, _poolName, classification.Kind, classification.Description, _consecutiveConnectFailures);
                return false;
            default:
                _consecutiveConnectFailures = 0;
                Log.BreakerFailureClassified(_logger, _poolName, classification.Kind, classification.Description, 0);
                return false;
        }
    }

    /// <summary>
    /// Counts a socket creation refused while the breaker is not closed and returns what its message needs; false
    /// when the breaker is closed (it closed meanwhile). Starts the half-open probe when the timer is late.
    /// </summary>
    public bool TryReject(out BreakerRejection rejection)
    {
        bool halfOpened;
        lock (_lock)
        {
            var now = _timeProvider.GetTimestamp();
            halfOpened = TryHalfOpenLocked(now, "the break elapsed before the timer ran");
            var state = State;
            if (state == RedisPoolCircuitState.Closed)
            {
                rejection = default;
                return false;
            }

            Interlocked.Increment(ref _rejected);
            rejection = new BreakerRejection(state, Remaining(state == RedisPoolCircuitState.Open ? _openUntil : _probeDeadline, now), _reason, _lastFailure);
        }

        if (halfOpened)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s._startProbe(), this, preferLocal: false);
        }

        RaisePendingEvents();
        return true;
    }

    private void OnTimer()
    {
        bool halfOpened;
        lock (_lock)
        {
            var now = _timeProvider.GetTimestamp();
            halfOpened = TryHalfOpenLocked(now, "break elapsed");
            if (!halfOpened && State == RedisPoolCircuitState.Open && !_disposed)
            {
                // An early or stale tick (the break was renewed meanwhile): wait for the current break.
                _timer.Change(Remaining(_openUntil, now), Timeout.InfiniteTimeSpan);
            }
        }

        if (halfOpened)
        {
            _startProbe();
            RaisePendingEvents();
        }
    }

    /// <summary>
    /// The only way into HalfOpen: the breaker is open and its break has elapsed. The timer gets here as a rule; a
    /// refused socket creation gets here when the timer runs late (thread-pool starvation during an incident), so
    /// a late timer never keeps the breaker open past its break. Whoever gets true starts the one probe.
    /// </summary>
    private bool TryHalfOpenLocked(long now, string why)
    {
        if (State != RedisPoolCircuitState.Open || _disposed || now < _openUntil)
        {
            return false;
        }

        _probeDeadline = now + (long)(_probeTimeout.TotalSeconds * _timeProvider.TimestampFrequency);
        TransitionLocked(RedisPoolCircuitState.HalfOpen, $"{why}; probing {RedisConnectionFactory.Format(ProbeTarget)} with one socket", _probeTimeout);
        return true;
    }

    /// <summary>
    /// HalfOpen to Closed when the probe was <paramref name="granted"/> a slot, else back to Open with the break
    /// doubled up to <see cref="RedisPoolBreakerOptions.MaxBreakDuration"/>. Returns true when the breaker opened again.
    /// </summary>
    public bool OnProbeCompleted(bool granted, string description)
    {
        bool reopened;
        lock (_lock)
        {
            if (State != RedisPoolCircuitState.HalfOpen || _disposed)
            {
                return false;
            }

            reopened = !granted;
            if (granted)
            {
                var failed = _failedProbes;
                _failedProbes = 0;
                _unproven = false;
                _breakDuration = _options.BreakDuration;
                _consecutiveConnectFailures = 0;
                _failedEndPoint = null;
                _reason = "closed";
                TransitionLocked(RedisPoolCircuitState.Closed, $"probe succeeded: {description} after {failed.ToString(CultureInfo.InvariantCulture)} failed probes", null);
            }
            else
            {
                _failedProbes++;
                var doubled = _breakDuration + _breakDuration;
                _breakDuration = doubled < _options.MaxBreakDuration ? doubled : _options.MaxBreakDuration;
                _lastFailure = Failure($"Half-open probe: {description}", _tripFailure);
                OpenLocked($"probe failed: {description}");
            }
        }

        RaisePendingEvents();
        return reopened;
    }

    /// <summary>
    /// HalfOpen to Closed without a probe: every slot of the pool's budget on the server is held by an open socket of
    /// the pool, so a probe would be one socket too many, and no new socket can open there anyway. Nothing shows the
    /// server has room, so the break stays doubled as after a failed probe: the first new socket refused by the
    /// server opens the breaker again for that doubled break, unless a socket opened meanwhile.
    /// </summary>
    public void OnProbeSkipped(string description)
    {
        lock (_lock)
        {
            if (State != RedisPoolCircuitState.HalfOpen || _disposed)
            {
                return;
            }

            _failedProbes++;
            var doubled = _breakDuration + _breakDuration;
            _breakDuration = doubled < _options.MaxBreakDuration ? doubled : _options.MaxBreakDuration;
            _unproven = true;
            _consecutiveConnectFailures = 0;
            _failedEndPoint = null;
            _reason = "closed";
            TransitionLocked(
                RedisPoolCircuitState.Closed,
                $"not probed: {description}; a new socket refused by the server opens the breaker again for {MaxClientsBreaker.FormatDuration(_breakDuration)}",
                null);
        }

        RaisePendingEvents();
    }

    private void TripLocked(string reason)
    {
        // After a close without a probe the server's room is unproven: the break doubled then is kept.
        if (!_unproven)
        {
            _failedProbes = 0;
            _breakDuration = _options.BreakDuration;
        }

        _unproven = false;
        OpenLocked(reason);
    }

    private void OpenLocked(string reason)
    {
        var wait = Jitter(_breakDuration);
        _openUntil = _timeProvider.GetTimestamp() + (long)(wait.TotalSeconds * _timeProvider.TimestampFrequency);
        _reason = reason;
        _consecutiveConnectFailures = 0;
        TransitionLocked(RedisPoolCircuitState.Open, $"{reason}; next probe in {MaxClientsBreaker.FormatDuration(wait)} (break {MaxClientsBreaker.FormatDuration(_breakDuration)}, {_failedProbes.ToString(CultureInfo.InvariantCulture)} failed probes)", wait);
        _timer.Change(wait, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// Each break waits uniformly between its duration and a quarter more ([d, 1.25 d]). A wait shorter than d
    /// would let one pool probe more than once per break interval; a quarter of an interval spreads a fleet that
    /// tripped together.
    /// </summary>
    internal TimeSpan Jitter(TimeSpan duration)
    {
        var fraction = 1.0 + (_random.NextDouble() * 0.25);
        return TimeSpan.FromTicks((long)(duration.Ticks * fraction));
    }

    private void TransitionLocked(RedisPoolCircuitState to, string reason, TimeSpan? retryAfter)
    {
        var from = State;
        Volatile.Write(ref _state, (int)to);
        Interlocked.Increment(ref _transitions);
        _pendingEvents.Enqueue(new RedisPoolCircuitStateChangedEventArgs(_poolName, from, to, reason, retryAfter));
    }

    // Raised outside the lock, one raiser at a time, in transition order, so handlers may call back into the breaker.
    private void RaisePendingEvents()
    {
        lock (_lock)
        {
            if (_raisingEvents)
            {
                return;
            }

            _raisingEvents = true;
        }

        while (true)
        {
            RedisPoolCircuitStateChangedEventArgs? args;
            lock (_lock)
            {
                if (!_pendingEvents.TryDequeue(out args))
                {
                    _raisingEvents = false;
                    return;
                }
            }

            _onTransition(args);
        }
    }

    private static RedisConnectionException Failure(string message, Exception? innerException) =>
        new(ConnectionFailureType.UnableToConnect, CommandFlags.None, message, innerException, CommandStatus.Unknown);

    private TimeSpan Remaining(long until, long now) =>
        until <= now ? TimeSpan.Zero : _timeProvider.GetElapsedTime(now, until);

    /// <summary>No transition after this; the timer stops.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _timer.Dispose();
    }

    public bool IsDisposed => Volatile.Read(ref _disposed);
}
