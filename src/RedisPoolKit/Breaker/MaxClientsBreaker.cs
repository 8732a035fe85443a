using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Gates every new socket of a pool (creation, and StackExchange.Redis's own reconnects through
/// <see cref="ReconnectRetryPolicy"/>). It trips when a failed socket is classified as max-clients (or after
/// <see cref="RedisPoolBreakerOptions.ConnectFailureThreshold"/> refused/timed-out connects), stays open for a
/// jittered break, then lets exactly one raw probe socket through; success closes it, failure doubles the break up to
/// <see cref="RedisPoolBreakerOptions.MaxBreakDuration"/>. Sockets already open are never touched: they keep serving.
/// </summary>
/// <remarks>
/// Jitter: each break waits uniformly between its duration and a quarter more ([d, 1.25 d]). Any wait shorter than d
/// (full jitter, [0, d], or [d/2, d]) lets one pool probe more than once per break interval, which the storm test
/// measured on the server as rejected connections; a quarter of an interval is enough to spread a fleet that
/// tripped together. One breaker serves all endpoints of the pool; probes go to the endpoint that failed (the first
/// endpoint when none is known).
/// </remarks>
internal sealed partial class MaxClientsBreaker : IAsyncDisposable, IDisposable
{
    // Failures arrive in bursts (every multiplexer loses its socket at once); one probe answers them all.
    private static readonly TimeSpan s_classificationReuse = TimeSpan.FromSeconds(1);
    // Classification runs while a caller waits for its failure: it must be short even with a long ConnectTimeout.
    private static readonly TimeSpan s_maxClassificationTimeout = TimeSpan.FromSeconds(2);

    private readonly string _poolName;
    private readonly RedisPoolBreakerOptions _options;
    private readonly IReadOnlyList<EndPoint> _endPoints;
    private readonly bool _useTls;
    private readonly TimeSpan _connectTimeout;
    private readonly TimeSpan _classificationTimeout;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly RedisPoolMetrics? _metrics;
    private readonly Func<CancellationToken, Task<long?>>? _readRejectedConnections;
    private readonly Random _random;
    private readonly IMaxClientsProbe _probe;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly Lock _lock = new();

    private int _state; // RedisPoolCircuitState; written under _lock, read lock-free on the hot path.
    private long _openUntil; // TimeProvider timestamp when the half-open probe is due.
    private long _probeDeadline;
    private TimeSpan _breakDuration;
    private int _failedProbes;
    private int _consecutiveConnectFailures;
    private string _reason = "closed";
    private Exception? _lastFailure;

    // The failure that opened the breaker: each failed probe wraps this one, not the previous probe's, so the chain
    // handed out as RedisPoolCircuitOpenException's inner exception stays two deep however long the outage.
    private Exception? _tripFailure;
    private EndPoint? _failedEndPoint;
    private long _reconnectsSuppressed;
    private long _rejectedCircuitOpen;
    private long _transitions;
    private TaskCompletionSource<Classification>? _classifying;
    private Classification? _lastClassification;
    private long _classifiedAt;
    private Task _halfOpenProbe = Task.CompletedTask;
    private Task _classification = Task.CompletedTask;
    private readonly Queue<RedisPoolCircuitStateChangedEventArgs> _pendingEvents = new();
    private bool _raisingEvents;
    private bool _disposed;

    public MaxClientsBreaker(
        string poolName,
        RedisPoolBreakerOptions options,
        IReadOnlyList<EndPoint> endPoints,
        bool useTls,
        TimeSpan connectTimeout,
        TimeProvider timeProvider,
        ILogger logger,
        RedisPoolMetrics? metrics,
        Func<CancellationToken, Task<long?>>? readRejectedConnections = null,
        Random? random = null,
        IMaxClientsProbe? probe = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endPoints);
        if (endPoints.Count == 0)
        {
            throw new ArgumentException("The breaker needs at least one endpoint to probe.", nameof(endPoints));
        }

        _poolName = poolName;
        _options = options;
        _endPoints = endPoints;
        _useTls = useTls;
        _connectTimeout = connectTimeout;
        _classificationTimeout = connectTimeout < s_maxClassificationTimeout ? connectTimeout : s_maxClassificationTimeout;
        _timeProvider = timeProvider;
        _logger = logger;
        _metrics = metrics;
        _readRejectedConnections = readRejectedConnections;
        _random = random ?? Random.Shared;
        _probe = probe ?? new MaxClientsProbe(timeProvider);
        _breakDuration = options.BreakDuration;
        ReconnectRetryPolicy = new BreakerAwareRetryPolicy(this, new ExponentialRetry(Math.Max(1000, (int)(connectTimeout.TotalMilliseconds / 2))));

        using (ExecutionContext.SuppressFlow())
        {
            _timer = timeProvider.CreateTimer(static s => ((MaxClientsBreaker)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    public RedisPoolCircuitState State => (RedisPoolCircuitState)Volatile.Read(ref _state);

    /// <summary>Set on every multiplexer the pool owns: no reconnect while the breaker is not closed.</summary>
    public IReconnectRetryPolicy ReconnectRetryPolicy { get; }

    /// <summary>StackExchange.Redis reconnect attempts held back because the breaker was not closed.</summary>
    public long ReconnectsSuppressed => Interlocked.Read(ref _reconnectsSuppressed);

    /// <summary>Socket creations refused because the breaker was not closed.</summary>
    public long RejectedCircuitOpen => Interlocked.Read(ref _rejectedCircuitOpen);

    /// <summary>Transitions since the pool started.</summary>
    public long Transitions => Interlocked.Read(ref _transitions);

    /// <summary>The last classified failure that tripped the breaker or failed a probe.</summary>
    public Exception? LastFailure => Volatile.Read(ref _lastFailure);

    public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? StateChanged;

    /// <summary>Called before every new socket; throws in well under a millisecond while the breaker is not closed.</summary>
    public void ThrowIfOpen(string endPoints)
    {
        if (Volatile.Read(ref _state) == (int)RedisPoolCircuitState.Closed)
        {
            return;
        }

        ThrowOpen(endPoints);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOpen(string endPoints)
    {
        RedisPoolCircuitState state;
        TimeSpan retryAfter;
        string reason;
        Exception? inner;
        var startProbe = false;
        lock (_lock)
        {
            var now = _timeProvider.GetTimestamp();
            // A late timer (thread-pool starvation during an incident) must not keep the breaker open past its break.
            if (State == RedisPoolCircuitState.Open && now >= _openUntil && !_disposed)
            {
                BeginHalfOpenLocked("the break elapsed before the timer ran");
                startProbe = true;
            }

            state = State;
            if (state == RedisPoolCircuitState.Closed)
            {
                return;
            }

            retryAfter = Remaining(state == RedisPoolCircuitState.Open ? _openUntil : _probeDeadline, now);
            reason = _reason;
            inner = _lastFailure;
        }

        Interlocked.Increment(ref _rejectedCircuitOpen);
        _metrics?.RecordRejectedCircuitOpen();
        if (startProbe)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.StartHalfOpenProbe(), this, preferLocal: false);
        }

        RaisePendingEvents();
        var next = state == RedisPoolCircuitState.HalfOpen
            ? $"a probe socket is being tried now (answer within {FormatDuration(retryAfter)})"
            : $"next probe in {FormatDuration(retryAfter)}";
        throw new RedisPoolCircuitOpenException(
            $"Pool '{_poolName}' did not open a new socket to {endPoints}: the max-clients breaker is {state} ({reason}); {next}. " +
            $"Sockets already open keep serving. Each break lasts 'Breaker.BreakDuration' (currently {FormatDuration(_options.BreakDuration)}), doubling after each failed probe up to 'Breaker.MaxBreakDuration' (currently {FormatDuration(_options.MaxBreakDuration)}); " +
            "free server slots or raise the server's maxclients.",
            retryAfter,
            inner);
    }

    /// <summary>A socket was opened: the server is reachable and has slots.</summary>
    public void OnSocketOpened()
    {
        if (Volatile.Read(ref _consecutiveConnectFailures) == 0 && Volatile.Read(ref _lastClassification) is null)
        {
            return;
        }

        lock (_lock)
        {
            _consecutiveConnectFailures = 0;
            _lastClassification = null;
        }
    }

    /// <summary>
    /// A socket could not be opened (or a connected multiplexer lost its socket): classify why with at most one raw
    /// probe, and trip on max-clients or on repeated connect failures. Opens nothing while the breaker is not closed.
    /// </summary>
    public async Task OnSocketFailedAsync(Exception failure, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (State != RedisPoolCircuitState.Closed || Volatile.Read(ref _disposed))
        {
            return;
        }

        Classification classification;
        try
        {
            classification = await ClassifyAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return;
        }

        Apply(classification, failure);
        RaisePendingEvents();
    }

    /// <summary>For <see cref="ConnectionMultiplexer.ConnectionFailed"/> of multiplexers the pool owns: classifies in the background.</summary>
    public void OnConnectionFailed(ConnectionFailedEventArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.FailureType == ConnectionFailureType.ConnectionDisposed || State != RedisPoolCircuitState.Closed)
        {
            return;
        }

        var failure = args.Exception ?? new RedisConnectionException(args.FailureType, CommandFlags.None, $"{(args.EndPoint is { } endPoint ? RedisConnectionFactory.Format(endPoint) : "?")} {args.FailureType}", null, CommandStatus.Unknown);
        _ = ObserveAsync(OnSocketFailedAsync(failure, _disposeCts.Token));
    }

    private async Task ObserveAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.BreakerClassificationFailed(_logger, _poolName, ex);
        }
    }

    private void Apply(Classification classification, Exception failure)
    {
        lock (_lock)
        {
            if (State != RedisPoolCircuitState.Closed || _disposed)
            {
                return;
            }

            switch (classification.Kind)
            {
                case FailureKind.MaxClients:
                    _lastFailure = _tripFailure = Failure(classification.Description, failure);
                    _failedEndPoint = classification.EndPoint;
                    TripLocked($"max-clients: {classification.Description}");
                    break;
                case FailureKind.ConnectFailure:
                    _consecutiveConnectFailures++;
                    _failedEndPoint = classification.EndPoint;
                    if (_options.TripOnConnectFailures && _consecutiveConnectFailures >= _options.ConnectFailureThreshold)
                    {
                        _lastFailure = _tripFailure = Failure(classification.Description, failure);
                        TripLocked($"{_consecutiveConnectFailures.ToString(CultureInfo.InvariantCulture)} consecutive connect failures ('Breaker.ConnectFailureThreshold' is {_options.ConnectFailureThreshold.ToString(CultureInfo.InvariantCulture)}): {classification.Description}");
                    }
                    else
                    {
                        Log.BreakerFailureClassified(_logger, _poolName, classification.Kind, classification.Description, _consecutiveConnectFailures);
                    }

                    break;
                default:
                    _consecutiveConnectFailures = 0;
                    Log.BreakerFailureClassified(_logger, _poolName, classification.Kind, classification.Description, 0);
                    break;
            }
        }
    }

    private void TripLocked(string reason)
    {
        _failedProbes = 0;
        _breakDuration = _options.BreakDuration;
        OpenLocked(reason);
    }

    private void OpenLocked(string reason)
    {
        var wait = Jitter(_breakDuration);
        _openUntil = _timeProvider.GetTimestamp() + (long)(wait.TotalSeconds * _timeProvider.TimestampFrequency);
        _reason = reason;
        _consecutiveConnectFailures = 0;
        _lastClassification = null;
        TransitionLocked(RedisPoolCircuitState.Open, $"{reason}; next probe in {FormatDuration(wait)} (break {FormatDuration(_breakDuration)}, {_failedProbes.ToString(CultureInfo.InvariantCulture)} failed probes)", wait);
        _timer.Change(wait, Timeout.InfiniteTimeSpan);
    }

    private static RedisConnectionException Failure(string message, Exception? innerException) =>
        new(ConnectionFailureType.UnableToConnect, CommandFlags.None, message, innerException, CommandStatus.Unknown);

    internal TimeSpan Jitter(TimeSpan duration)
    {
        var fraction = 1.0 + (_random.NextDouble() * 0.25);
        return TimeSpan.FromTicks((long)(duration.Ticks * fraction));
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            if (State != RedisPoolCircuitState.Open || _disposed)
            {
                return;
            }

            var remaining = Remaining(_openUntil, _timeProvider.GetTimestamp());
            if (remaining > TimeSpan.Zero)
            {
                // An early or stale tick (the break was renewed meanwhile): wait for the current break.
                _timer.Change(remaining, Timeout.InfiniteTimeSpan);
                return;
            }

            BeginHalfOpenLocked("break elapsed");
        }

        StartHalfOpenProbe();
        RaisePendingEvents();
    }

    private void BeginHalfOpenLocked(string why)
    {
        _probeDeadline = _timeProvider.GetTimestamp() + (long)(_connectTimeout.TotalSeconds * _timeProvider.TimestampFrequency);
        TransitionLocked(RedisPoolCircuitState.HalfOpen, $"{why}; probing {RedisConnectionFactory.Format(ProbeTarget)} with one socket", _connectTimeout);
    }

    private EndPoint ProbeTarget => _failedEndPoint ?? _endPoints[0];

    private void StartHalfOpenProbe()
    {
        var probe = RunHalfOpenProbeAsync();
        lock (_lock)
        {
            _halfOpenProbe = probe;
        }
    }

    private async Task RunHalfOpenProbeAsync()
    {
        var target = ProbeTarget;
        ProbeResult result;
        try
        {
            result = _useTls
                ? await _probe.ReadGreetingAsync(target, _connectTimeout, _disposeCts.Token).ConfigureAwait(false)
                : await _probe.PingAsync(target, _connectTimeout, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            result = new ProbeResult(ProbeOutcome.Failed, Error: ex.Message);
        }

        // Over TLS a free server waits for the handshake (silent); over plain TCP any reply but max-clients is a slot.
        var granted = _useTls ? result.Outcome == ProbeOutcome.Silent : result.Outcome == ProbeOutcome.Replied;
        var description = $"{RedisConnectionFactory.Format(target)} {result.Describe()}";
        lock (_lock)
        {
            if (State != RedisPoolCircuitState.HalfOpen || _disposed)
            {
                return;
            }

            if (granted)
            {
                var failed = _failedProbes;
                _failedProbes = 0;
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

            Raise(args);
        }
    }

    private void Raise(RedisPoolCircuitStateChangedEventArgs args)
    {
        _metrics?.RecordCircuitTransition(args.PreviousState, args.State);
        var suppressed = ReconnectsSuppressed;
        var rejected = RejectedCircuitOpen;
        switch (args.State)
        {
            case RedisPoolCircuitState.Open:
                Log.BreakerOpened(_logger, _poolName, args.PreviousState, args.Reason, suppressed, rejected);
                break;
            case RedisPoolCircuitState.HalfOpen:
                Log.BreakerHalfOpen(_logger, _poolName, args.Reason);
                break;
            default:
                Log.BreakerClosed(_logger, _poolName, args.Reason, suppressed, rejected);
                break;
        }

        try
        {
            StateChanged?.Invoke(this, args);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A handler's bug must not stop the breaker (it runs on timer threads).
            Log.BreakerHandlerFailed(_logger, _poolName, ex);
        }
    }

    private TimeSpan Remaining(long until, long now) =>
        until <= now ? TimeSpan.Zero : _timeProvider.GetElapsedTime(now, until);

    internal static string FormatDuration(TimeSpan value) =>
        value.TotalSeconds >= 1
            ? value.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
            : value.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

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

        _disposeCts.Cancel();
        _timer.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        Task probe;
        Task classification;
        lock (_lock)
        {
            probe = _halfOpenProbe;
            classification = _classification;
        }

        await Task.WhenAll(probe, classification).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private sealed class BreakerAwareRetryPolicy(MaxClientsBreaker breaker, IReconnectRetryPolicy whenClosed) : IReconnectRetryPolicy
    {
        public bool ShouldRetry(long currentRetryCount, int timeElapsedMillisecondsSinceLastRetry)
        {
            if (!whenClosed.ShouldRetry(currentRetryCount, timeElapsedMillisecondsSinceLastRetry))
            {
                return false;
            }

            if (breaker.State == RedisPoolCircuitState.Closed)
            {
                return true;
            }

            Interlocked.Increment(ref breaker._reconnectsSuppressed);
            return false;
        }
    }
}
