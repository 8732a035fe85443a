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
/// The probe is a socket of the pool like any other: it takes its place in the budget of the node it goes to
/// (<see cref="ConnectionBudget.NodeBudget.TakeProbeSlot"/>), and is not sent when that budget has no place for it.
/// </summary>
/// <remarks>
/// This type is what the pool calls; <see cref="BreakerStateController"/> makes every transition and
/// <see cref="MaxClientsClassifier"/> decides whether a failure is max-clients. One breaker serves all endpoints
/// of the pool; probes go to the endpoint that failed (the first endpoint when none is known). The state machine is
/// described in docs/Architecture.md.
/// </remarks>
internal sealed class MaxClientsBreaker : IAsyncDisposable, IDisposable
{
    private readonly string _poolName;
    private readonly RedisPoolBreakerOptions _options;
    private readonly bool _useTls;
    private readonly TimeSpan _connectTimeout;
    private readonly ILogger _logger;
    private readonly RedisPoolMetrics? _metrics;
    private readonly IMaxClientsProbe _probe;
    private readonly MaxClientsClassifier _classifier;
    private readonly BreakerStateController _controller;
    private readonly CancellationTokenSource _disposeCts = new();
    private long _reconnectsSuppressed;
    private readonly Func<EndPoint, ConnectionBudget.NodeBudget>? _probeBudget;
    private Task _halfOpenProbe = Task.CompletedTask;

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
        IMaxClientsProbe? probe = null,
        Func<EndPoint, ConnectionBudget.NodeBudget>? probeBudget = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endPoints);
        if (endPoints.Count == 0)
        {
            throw new ArgumentException("The breaker needs at least one endpoint to probe.", nameof(endPoints));
        }

        _poolName = poolName;
        _options = options;
        _useTls = useTls;
        _connectTimeout = connectTimeout;
        _logger = logger;
        _metrics = metrics;
        _probe = probe ?? new MaxClientsProbe(timeProvider);
        _probeBudget = probeBudget;
        _classifier = new MaxClientsClassifier(endPoints, useTls, connectTimeout, timeProvider, _probe, readRejectedConnections, _disposeCts.Token, probeBudget);
        _controller = new BreakerStateController(
            poolName, options, endPoints, connectTimeout, timeProvider, logger, random ?? Random.Shared, StartHalfOpenProbe, Raise);
        ReconnectRetryPolicy = new BreakerAwareRetryPolicy(this, new ExponentialRetry(Math.Max(1000, (int)(connectTimeout.TotalMilliseconds / 2))));
    }

    public RedisPoolCircuitState State => _controller.State;

    /// <summary>Set on every multiplexer the pool owns: no reconnect while the breaker is not closed.</summary>
    public IReconnectRetryPolicy ReconnectRetryPolicy { get; }

    /// <summary>StackExchange.Redis reconnect attempts held back because the breaker was not closed.</summary>
    public long ReconnectsSuppressed => Interlocked.Read(ref _reconnectsSuppressed);

    /// <summary>Socket creations refused because the breaker was not closed.</summary>
    public long RejectedCircuitOpen => _controller.Rejected;

    /// <summary>The break the next trip or failed probe waits, before jitter.</summary>
    internal TimeSpan BreakDuration => _controller.BreakDuration;

    /// <summary>True while the breaker is closed without a probe having shown the server has room.</summary>
    internal bool Unproven => _controller.Unproven;

    /// <summary>Transitions since the pool started.</summary>
    public long Transitions => _controller.Transitions;

    /// <summary>The last classified failure that tripped the breaker or failed a probe.</summary>
    public Exception? LastFailure => _controller.LastFailure;

    public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? StateChanged;

    /// <summary>Called before every new socket; throws in well under a millisecond while the breaker is not closed.</summary>
    public void ThrowIfOpen(string endPoints)
    {
        if (_controller.State == RedisPoolCircuitState.Closed)
        {
            return;
        }

        ThrowOpen(endPoints);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOpen(string endPoints)
    {
        if (Refusal($"did not open a new socket to {endPoints}") is { } refusal)
        {
            throw refusal;
        }
    }

    /// <summary>
    /// The exception for work refused while the breaker is not closed (<paramref name="what"/> says what the pool did),
    /// counted as rejected; null when the breaker is closed.
    /// </summary>
    public RedisPoolCircuitOpenException? Refusal(string what)
    {
        if (!_controller.TryReject(out var rejection))
        {
            return null;
        }

        _metrics?.RecordRejectedCircuitOpen();
        var next = rejection.State == RedisPoolCircuitState.HalfOpen
            ? $"a probe socket is being tried now (answer within {FormatDuration(rejection.RetryAfter)})"
            : $"next probe in {FormatDuration(rejection.RetryAfter)}";
        return new RedisPoolCircuitOpenException(
            $"Pool '{_poolName}' {what}: the max-clients breaker is {rejection.State} ({rejection.Reason}); {next}. " +
            $"Sockets already open keep serving. Each break lasts 'Breaker.BreakDuration' (currently {FormatDuration(_options.BreakDuration)}), doubling after each failed probe up to 'Breaker.MaxBreakDuration' (currently {FormatDuration(_options.MaxBreakDuration)}); " +
            "free server slots or raise the server's maxclients.",
            rejection.RetryAfter,
            rejection.LastFailure);
    }

    /// <summary>A reconnect held back elsewhere (a node's tunnel) because this breaker was not closed.</summary>
    public void NoteReconnectSuppressed() => Interlocked.Increment(ref _reconnectsSuppressed);

    /// <summary>The pool's server was replaced (a Sentinel failover): see <see cref="BreakerStateController.OnServerMoved"/>.</summary>
    public void OnServerMoved(string why)
    {
        _classifier.Forget();
        _controller.OnServerMoved(why);
    }

    /// <summary>A socket was opened: the server is reachable and has slots.</summary>
    public void OnSocketOpened()
    {
        _controller.OnSocketOpened();
        _classifier.Forget();
    }

    /// <summary>
    /// A socket could not be opened (or a connected multiplexer lost its socket): classify why with at most one raw
    /// probe, and trip on max-clients or on repeated connect failures. Opens nothing while the breaker is not closed.
    /// </summary>
    /// <param name="failure">What failed.</param>
    /// <param name="cancellationToken">Ends the wait for the verdict.</param>
    /// <param name="withinBudget">
    /// True for a socket StackExchange.Redis lost: its slot may already be taken again by its reconnect, so the probe
    /// goes within the node's budget, standing in for the lost socket only while that one waits (see
    /// <see cref="MaxClientsClassifier.ClassifyAsync"/>). False when the caller still holds the failed socket's slot.
    /// </param>
    public async Task OnSocketFailedAsync(Exception failure, CancellationToken cancellationToken, bool withinBudget = false)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (State != RedisPoolCircuitState.Closed || _controller.IsDisposed)
        {
            return;
        }

        MaxClientsClassifier.Classification classification;
        try
        {
            classification = await _classifier.ClassifyAsync(_controller.FailedEndPoint, withinBudget, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return;
        }

        if (_controller.OnFailureClassified(classification, failure))
        {
            // After a break the server is asked afresh, never answered from before the trip.
            _classifier.Forget();
        }
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
        _ = ObserveAsync(OnSocketFailedAsync(failure, _disposeCts.Token, withinBudget: true));
    }

    /// <summary>
    /// For a connection's tunnel: a reconnect to <paramref name="endPoint"/> never connected (StackExchange.Redis does
    /// not report that) and the next one waits. Classifies the failure with the probe standing in for that socket;
    /// true when the next reconnect may go (the breaker is still closed), false when it is held back.
    /// </summary>
    public async Task<bool> OnReconnectFailedAsync(EndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var failure = new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, $"{RedisConnectionFactory.Format(endPoint)}: a reconnect did not connect", null, CommandStatus.Unknown);
        try
        {
            await OnSocketFailedAsync(failure, _disposeCts.Token, withinBudget: true).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.BreakerClassificationFailed(_logger, _poolName, ex);
        }

        if (State == RedisPoolCircuitState.Closed)
        {
            return true;
        }

        NoteReconnectSuppressed();
        return false;
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

    private void StartHalfOpenProbe() => Volatile.Write(ref _halfOpenProbe, RunHalfOpenProbeAsync());

    private async Task RunHalfOpenProbeAsync()
    {
        var target = _controller.ProbeTarget;

        // The probe goes within the budget of the node it goes to: a free slot, or the slot of one of the pool's sockets
        // there that is down (held back while the breaker is not closed). With neither, every slot is held by a socket
        // of the pool that is open: no new socket can open there whatever the breaker says, so it closes without a
        // probe, the sockets keep serving, and the next socket the server refuses opens it again for a doubled break.
        // The slot goes back once, when the probe's socket is closed, whether it answered, failed or was cancelled.
        var budget = _probeBudget?.Invoke(target);
        using var slot = budget?.TakeProbeSlot();
        if (budget is not null && slot is null)
        {
            _classifier.Forget();
            _controller.OnProbeSkipped($"{RedisConnectionFactory.Format(target)}: every slot of the pool's 'MaxConnections' there is held by an open socket ({budget.Describe()}), and a probe would be one socket too many");
            return;
        }

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
        if (_controller.OnProbeCompleted(granted, $"{RedisConnectionFactory.Format(target)} {result.Describe()}"))
        {
            _classifier.Forget();
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

    internal static string FormatDuration(TimeSpan value) =>
        value.TotalSeconds >= 1
            ? value.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
            : value.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

    public void Dispose()
    {
        if (_controller.IsDisposed)
        {
            return;
        }

        _controller.Dispose();
        _disposeCts.Cancel();
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        await Task.WhenAll(Volatile.Read(ref _halfOpenProbe), _classifier.Latest).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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
