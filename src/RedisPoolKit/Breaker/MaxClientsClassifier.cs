using System.Globalization;
using System.Net;

namespace RedisPoolKit;

/// <summary>
/// Answers one question for the breaker: was this socket failure "max clients"? StackExchange.Redis reports a full
/// server as a closed socket, so the answer comes from one raw probe socket (and, when a live admin socket exists,
/// the server's <c>rejected_connections</c> counter before and after it).
/// </summary>
internal sealed class MaxClientsClassifier
{
    // Failures arrive in bursts (every multiplexer loses its socket at once); one probe answers them all.
    private static readonly TimeSpan s_reuse = TimeSpan.FromSeconds(1);
    // Classification runs while a caller waits for its failure: it must be short even with a long ConnectTimeout.
    private static readonly TimeSpan s_maxTimeout = TimeSpan.FromSeconds(2);

    private readonly IReadOnlyList<EndPoint> _endPoints;
    private readonly bool _useTls;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _timeProvider;
    private readonly IMaxClientsProbe _probe;
    private readonly Func<CancellationToken, Task<long?>>? _readRejectedConnections;
    private readonly Func<EndPoint, ConnectionBudget.NodeBudget>? _probeBudget;
    private readonly CancellationToken _disposing;
    private readonly Lock _lock = new();

    private TaskCompletionSource<Classification>? _running;
    private Classification? _last;
    private long _classifiedAt;
    private Task _latest = Task.CompletedTask;

    public MaxClientsClassifier(
        IReadOnlyList<EndPoint> endPoints,
        bool useTls,
        TimeSpan connectTimeout,
        TimeProvider timeProvider,
        IMaxClientsProbe probe,
        Func<CancellationToken, Task<long?>>? readRejectedConnections,
        CancellationToken disposing,
        Func<EndPoint, ConnectionBudget.NodeBudget>? probeBudget = null)
    {
        _endPoints = endPoints;
        _useTls = useTls;
        _timeout = connectTimeout < s_maxTimeout ? connectTimeout : s_maxTimeout;
        _timeProvider = timeProvider;
        _probe = probe;
        _readRejectedConnections = readRejectedConnections;
        _disposing = disposing;
        _probeBudget = probeBudget;
    }

    internal enum FailureKind
    {
        /// <summary>The server is at maxclients: trip now.</summary>
        MaxClients,
        /// <summary>Refused, timed out or unreachable: trip after <see cref="RedisPoolBreakerOptions.ConnectFailureThreshold"/> in a row.</summary>
        ConnectFailure,
        /// <summary>The server has slots; the failure was something else (auth, a killed socket, ...).</summary>
        Other,
    }

    internal sealed record Classification(FailureKind Kind, string Description, EndPoint EndPoint, bool NotProbed = false);

    /// <summary>The classification running or last run, for disposal to wait on.</summary>
    public Task Latest
    {
        get
        {
            lock (_lock)
            {
                return _latest;
            }
        }
    }

    /// <summary>
    /// Classifies a failure. Every caller that failed meanwhile shares one probe, and a result stays good for a
    /// moment, so a burst of failures costs one socket. <paramref name="failedEndPoint"/> is probed first.
    /// </summary>
    /// <param name="failedEndPoint">The endpoint to probe first.</param>
    /// <param name="withinBudget">
    /// True when no slot is held for the failure (a socket StackExchange.Redis lost, whose reconnect may already be under
    /// way): the probe takes its place in the node's budget (<see cref="ConnectionBudget.NodeBudget.TakeProbeSlot"/>), and
    /// with no place there is not sent. False when the caller still holds the failed socket's slot: the probe stands in
    /// for it.
    /// </param>
    /// <param name="cancellationToken">Ends the caller's wait; the probe runs on.</param>
    public Task<Classification> ClassifyAsync(EndPoint? failedEndPoint, bool withinBudget, CancellationToken cancellationToken)
    {
        TaskCompletionSource<Classification> owned;
        lock (_lock)
        {
            if (_running is { } running)
            {
                return running.Task.WaitAsync(cancellationToken);
            }

            if (_last is { } last && _timeProvider.GetElapsedTime(_classifiedAt) < s_reuse)
            {
                return Task.FromResult(last);
            }

            owned = _running = new TaskCompletionSource<Classification>(TaskCreationOptions.RunContinuationsAsynchronously);
            _latest = owned.Task;
        }

        _ = RunAsync(owned, failedEndPoint, withinBudget);
        return owned.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Drops the remembered result: a socket opened since, or the breaker opened on it.</summary>
    public void Forget()
    {
        if (Volatile.Read(ref _last) is null)
        {
            return;
        }

        lock (_lock)
        {
            _last = null;
        }
    }

    private async Task RunAsync(TaskCompletionSource<Classification> owned, EndPoint? failedEndPoint, bool withinBudget)
    {
        try
        {
            var result = await ClassifyCoreAsync(failedEndPoint, withinBudget, _disposing).ConfigureAwait(false);
            lock (_lock)
            {
                _running = null;
                // A failure not probed for want of a place is asked again next time: the lost socket's own reconnect decides.
                if (!result.NotProbed)
                {
                    _last = result;
                    _classifiedAt = _timeProvider.GetTimestamp();
                }
            }

            owned.TrySetResult(result);
        }
        catch (Exception ex)
        {
            lock (_lock)
            {
                _running = null;
            }

            if (ex is OperationCanceledException)
            {
                owned.TrySetCanceled(_disposing);
            }
            else
            {
                owned.TrySetException(ex);
            }
        }
    }

    private async Task<Classification> ClassifyCoreAsync(EndPoint? failedEndPoint, bool withinBudget, CancellationToken cancellationToken)
    {
        var before = await ReadRejectedConnectionsAsync(cancellationToken).ConfigureAwait(false);
        var target = _endPoints[0];
        var result = default(ProbeResult);
        // Start with the endpoint that failed last; stop at the first decisive answer (one socket for one endpoint).
        IEnumerable<EndPoint> order = failedEndPoint is { } failed ? _endPoints.OrderBy(e => e.Equals(failed) ? 0 : 1) : _endPoints;
        foreach (var endPoint in order)
        {
            target = endPoint;
            // The slot goes back (or the socket it stood in for may reconnect) once the probe's socket is closed.
            var budget = withinBudget ? _probeBudget?.Invoke(endPoint) : null;
            using var slot = budget?.TakeProbeSlot();
            if (budget is not null && slot is null)
            {
                return new(
                    FailureKind.Other,
                    $"{RedisConnectionFactory.Format(endPoint)} not probed: every slot of the pool's 'MaxConnections' there is held by a socket that is open or reconnecting ({budget.Describe()}); that reconnect tells whether the server has room",
                    endPoint,
                    NotProbed: true);
            }

            result = await _probe.ReadGreetingAsync(endPoint, _timeout, cancellationToken).ConfigureAwait(false);
            if (result.Outcome is not (ProbeOutcome.Silent or ProbeOutcome.Replied))
            {
                break;
            }
        }

        var after = before is null ? null : await ReadRejectedConnectionsAsync(cancellationToken).ConfigureAwait(false);
        return Interpret(target, result, before, after);
    }

    internal Classification Interpret(EndPoint endPoint, ProbeResult result, long? before, long? after)
    {
        var name = RedisConnectionFactory.Format(endPoint);
        var rising = before is { } b && after is { } a && a > b;
        var counter = (before, after) switch
        {
            (null, _) => "rejected_connections not read (no live admin socket)",
            ({ } x, { } y) => $"rejected_connections {x.ToString(CultureInfo.InvariantCulture)} -> {y.ToString(CultureInfo.InvariantCulture)}",
            _ => "rejected_connections not read again",
        };
        var closed = _useTls ? "accepted TCP and closed it before the TLS handshake finished" : "accepted TCP and closed it without a reply";
        return result.Outcome switch
        {
            ProbeOutcome.MaxClients => new(FailureKind.MaxClients, $"{name} {result.Describe()} ({counter})", endPoint),
            ProbeOutcome.ClosedWithoutReply when rising => new(FailureKind.MaxClients, $"{name} {closed} ({counter})", endPoint),
            // Over TLS a full server cannot write its error: with no live socket to read the counter, the drop is the only sign.
            ProbeOutcome.ClosedWithoutReply when _useTls && before is null => new(FailureKind.MaxClients, $"{name} {closed}, taken as max-clients ({counter})", endPoint),
            ProbeOutcome.ClosedWithoutReply => new(FailureKind.Other, $"{name} {closed} ({counter}, not max-clients)", endPoint),
            _ when result.IsConnectFailure => new(FailureKind.ConnectFailure, $"{name} {result.Describe()}", endPoint),
            _ => new(FailureKind.Other, $"{name} {result.Describe()}", endPoint),
        };
    }

    private async Task<long?> ReadRejectedConnectionsAsync(CancellationToken cancellationToken)
    {
        if (_readRejectedConnections is null)
        {
            return null;
        }

        try
        {
            return await _readRejectedConnections(cancellationToken).WaitAsync(_timeout, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            // The live socket may be gone too: classify from the probe alone.
            return null;
        }
    }
}
