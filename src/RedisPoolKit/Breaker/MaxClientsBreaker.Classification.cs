using System.Globalization;
using System.Net;

namespace RedisPoolKit;

internal sealed partial class MaxClientsBreaker
{
    internal enum FailureKind
    {
        /// <summary>The server is at maxclients: trip now.</summary>
        MaxClients,
        /// <summary>Refused, timed out or unreachable: trip after <see cref="RedisPoolBreakerOptions.ConnectFailureThreshold"/> in a row.</summary>
        ConnectFailure,
        /// <summary>The server has slots; the failure was something else (auth, a killed socket, ...).</summary>
        Other,
    }

    internal sealed record Classification(FailureKind Kind, string Description, EndPoint EndPoint);

    // Every caller that failed meanwhile shares one probe; a result stays good for a moment so a burst costs one socket.
    private Task<Classification> ClassifyAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource<Classification> owned;
        lock (_lock)
        {
            if (_classifying is { } running)
            {
                return running.Task.WaitAsync(cancellationToken);
            }

            if (_lastClassification is { } last && _timeProvider.GetElapsedTime(_classifiedAt) < s_classificationReuse)
            {
                return Task.FromResult(last);
            }

            owned = _classifying = new TaskCompletionSource<Classification>(TaskCreationOptions.RunContinuationsAsynchronously);
            _classification = owned.Task;
        }

        _ = RunClassificationAsync(owned);
        return owned.Task.WaitAsync(cancellationToken);
    }

    private async Task RunClassificationAsync(TaskCompletionSource<Classification> owned)
    {
        try
        {
            var result = await ClassifyCoreAsync(_disposeCts.Token).ConfigureAwait(false);
            lock (_lock)
            {
                _classifying = null;
                _lastClassification = result;
                _classifiedAt = _timeProvider.GetTimestamp();
            }

            owned.TrySetResult(result);
        }
        catch (Exception ex)
        {
            lock (_lock)
            {
                _classifying = null;
            }

            if (ex is OperationCanceledException)
            {
                owned.TrySetCanceled(_disposeCts.Token);
            }
            else
            {
                owned.TrySetException(ex);
            }
        }
    }

    private async Task<Classification> ClassifyCoreAsync(CancellationToken cancellationToken)
    {
        var before = await ReadRejectedConnectionsAsync(cancellationToken).ConfigureAwait(false);
        var target = _endPoints[0];
        var result = default(ProbeResult);
        // Start with the endpoint that failed last; stop at the first decisive answer (one socket for one endpoint).
        IEnumerable<EndPoint> order = _failedEndPoint is { } failed ? _endPoints.OrderBy(e => e.Equals(failed) ? 0 : 1) : _endPoints;
        foreach (var endPoint in order)
        {
            target = endPoint;
            result = await _probe.ReadGreetingAsync(endPoint, _classificationTimeout, cancellationToken).ConfigureAwait(false);
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
            return await _readRejectedConnections(cancellationToken).WaitAsync(_classificationTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            // The live socket may be gone too: classify from the probe alone.
            return null;
        }
    }
}
