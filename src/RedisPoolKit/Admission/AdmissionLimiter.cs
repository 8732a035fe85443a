using System.Globalization;

namespace RedisPoolKit;

/// <summary>
/// Bounds the commands outstanding through the pool: at most the in-flight limit admitted (<c>MaxInFlight</c>, or
/// with <c>AdaptiveInFlight</c> a limit between a floor and <c>MaxInFlight</c> found from measured latency), at most
/// <c>MaxQueueLength</c> waiting (first come, first served) for at most <c>QueueTimeout</c>, the rest rejected at once.
/// </summary>
/// <remarks>
/// The uncontended path is one CAS and allocates nothing; only a caller that must wait takes the lock and
/// allocates its waiter. <c>System.Threading.RateLimiting.ConcurrencyLimiter</c> was measured against this
/// (benchmarks/RedisPoolKit.Benchmarks, AdmissionBenchmarks): it takes a lock and allocates a lease per
/// acquire, which the per-command hot path cannot afford. The adaptive limit adds a plain increment per admission
/// (which command to time) and a branch per exit; only sampled commands are timed (see <see cref="AdaptiveInFlightLimit"/>).
/// </remarks>
internal sealed class AdmissionLimiter
{
    private readonly string _poolName;
    private readonly string? _node;
    private readonly int _maxInFlight;
    private AdaptiveInFlightLimit _limit;
    private bool _adaptive;
    private readonly int _maxQueueLength;
    private readonly TimeSpan _queueTimeout;
    private readonly TimeProvider _timeProvider;
    private readonly RedisPoolMetrics _metrics;
    private readonly RejectionLog? _rejectionLog;
    private readonly LinkedList<Waiter> _waiters = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;

    // Racy on purpose: it only picks which commands to time, and a lost increment times one more or one fewer.
    private int _sampleTick;
    private int _queued;
    private long _rejectedQueueFull;
    private long _rejectedQueueTimeout;
    private volatile bool _closed;
    private volatile string? _held;

    /// <summary>
    /// A limiter; the in-flight limit is <paramref name="maxInFlight"/>, or <paramref name="adaptiveLimit"/> when given (its
    /// ceiling being <paramref name="maxInFlight"/>). With <paramref name="node"/>, the limiter of that cluster node only:
    /// its messages name the node.
    /// </summary>
    public AdmissionLimiter(string poolName, int maxInFlight, int maxQueueLength, TimeSpan queueTimeout, TimeProvider timeProvider, RedisPoolMetrics metrics, RejectionLog? rejectionLog = null, AdaptiveInFlightLimit? adaptiveLimit = null, string? node = null)
    {
        _node = node;
        _rejectionLog = rejectionLog;
        _poolName = poolName;
        _maxInFlight = maxInFlight;
        _adaptive = adaptiveLimit is not null;
        _limit = adaptiveLimit ?? new AdaptiveInFlightLimit(maxInFlight, maxInFlight, timeProvider);
        _maxQueueLength = maxQueueLength;
        _queueTimeout = queueTimeout;
        _timeProvider = timeProvider;
        _metrics = metrics;
    }

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The cluster node ("host:port") this limiter admits for; null for the pool's own limiter.</summary>
    public string? NodeName => _node;

    /// <summary>The in-flight limit now: <c>MaxInFlight</c> when fixed.</summary>
    public AdaptiveInFlightLimit InFlightLimit => _limit;

    public int Queued => Volatile.Read(ref _queued);

    public long RejectedQueueFull => Interlocked.Read(ref _rejectedQueueFull);

    public long RejectedQueueTimeout => Interlocked.Read(ref _rejectedQueueTimeout);

    private object Lock => _waiters;

    /// <summary>Admits at once when a permit is free and nobody is queued (so arrivals never overtake waiters).</summary>
    public bool TryEnter()
    {
        if (_closed)
        {
            ThrowDisposed();
        }

        return Volatile.Read(ref _queued) == 0 && _held is null && TryTakePermit();
    }

    /// <summary>Why admission is held, or null when it is not.</summary>
    public string? HeldFor => _held;

    /// <summary>
    /// Stops granting permits: arrivals queue (within <c>MaxQueueLength</c>, for at most <c>QueueTimeout</c>) until
    /// <see cref="Resume"/>. Commands already admitted are not affected. <paramref name="reason"/> goes into the
    /// rejection of a caller whose wait runs out meanwhile.
    /// </summary>
    public void Hold(string reason) => _held = reason;

    /// <summary>Grants permits again, first to the callers queued while admission was held.</summary>
    public void Resume()
    {
        _held = null;
        Drain();
    }

    public ValueTask EnterAsync(CancellationToken cancellationToken = default) => EnterAsync(_queueTimeout, cancellationToken);

    /// <summary>Waits at most <paramref name="queueTimeout"/> in the queue: what is left of <c>QueueTimeout</c> after a wait elsewhere.</summary>
    public ValueTask EnterAsync(TimeSpan queueTimeout, CancellationToken cancellationToken = default)
    {
        if (TryEnter())
        {
            return ValueTask.CompletedTask;
        }

        return new ValueTask(Enqueue(queueTimeout, cancellationToken));
    }

    /// <summary>
    /// Admits up to <c>MaxInFlight</c> whatever the latency from now on: in a cluster the nodes' own limiters adapt, and
    /// a pool-wide limit sampled mostly from a slow node would hold back the healthy ones.
    /// </summary>
    public void UseFixedLimit()
    {
        if (_adaptive)
        {
            _limit = new AdaptiveInFlightLimit(_maxInFlight, _maxInFlight, _timeProvider);
            _adaptive = false;
            Drain();
        }
    }

    /// <summary>
    /// For an admitted command: a start timestamp when this one is to be timed for the adaptive limit, else 0. Pass it
    /// to <see cref="Exit(long)"/> when the command succeeded.
    /// </summary>
    public long SampleStart() =>
        _adaptive && (++_sampleTick & (AdaptiveInFlightLimit.SampleEvery - 1)) == 0 ? _limit.StartSample() : 0;

    public void Exit() => Exit(sampleStart: 0);

    /// <summary>Returns a permit; <paramref name="sampleStart"/> from <see cref="SampleStart"/> for a command that succeeded, else 0.</summary>
    public void Exit(long sampleStart)
    {
        var after = Interlocked.Decrement(ref _inFlight);

        // A limit that went up has permits for the queue: the drain below hands them out.
        if (sampleStart != 0)
        {
            _limit.Complete(sampleStart, after + 1);
        }

        if (Volatile.Read(ref _queued) > 0)
        {
            Drain();
        }
        else if (after == 0 && _closed)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>Stops admitting: queued callers and later arrivals get <see cref="ObjectDisposedException"/>.</summary>
    public void Close()
    {
        List<Waiter> failed;
        lock (Lock)
        {
            _closed = true;
            failed = [.. _waiters];
            _waiters.Clear();
            Volatile.Write(ref _queued, 0);
        }

        foreach (var waiter in failed)
        {
            waiter.Dispose();
            waiter.TrySetException(new ObjectDisposedException(nameof(RedisPool), $"Pool '{_poolName}' was disposed while the command waited for admission."));
        }

        if (InFlight == 0)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>Completes when every admitted command has exited, or after <paramref name="grace"/>; true when drained.</summary>
    public async Task<bool> WaitForDrainAsync(TimeSpan grace)
    {
        if (InFlight == 0)
        {
            return true;
        }

        try
        {
            await _drained.Task.WaitAsync(grace, _timeProvider).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private bool TryTakePermit()
    {
        var current = Volatile.Read(ref _inFlight);
        while (current < _limit.Limit)
        {
            var seen = Interlocked.CompareExchange(ref _inFlight, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    private Task Enqueue(TimeSpan queueTimeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();

        // Under overload most arrivals find the queue full: they are refused without the lock the drain needs.
        if (_maxQueueLength > 0 && Volatile.Read(ref _queued) >= _maxQueueLength && !_closed)
        {
            throw RejectQueueFull();
        }

        Waiter? waiter = null;
        lock (Lock)
        {
            if (_closed)
            {
                ThrowDisposed();
            }

            // Re-check under the lock: a permit freed before we queued must not be missed.
            if (_waiters.Count == 0 && _held is null && TryTakePermit())
            {
                return Task.CompletedTask;
            }

            if (_waiters.Count < _maxQueueLength)
            {
                waiter = new Waiter(this, _timeProvider.GetTimestamp());
                waiter.Node = _waiters.AddLast(waiter);
                Interlocked.Increment(ref _queued);
            }
        }

        // The message and the log are built outside the lock.
        if (waiter is null)
        {
            throw RejectQueueFull();
        }

        // Timer and registration are armed outside the lock: their callbacks take it.
        waiter.Arm(_timeProvider, queueTimeout, cancellationToken);

        // A permit may have been freed between our check and the enqueue, with nobody to drain.
        Drain();
        return waiter.Task;
    }

    private void Drain()
    {
        List<Waiter>? granted = null;
        lock (Lock)
        {
            while (_held is null && _waiters.First is { } first && TryTakePermit())
            {
                _waiters.RemoveFirst();
                first.Value.Node = null;
                Interlocked.Decrement(ref _queued);
                (granted ??= []).Add(first.Value);
            }
        }

        if (granted is null)
        {
            return;
        }

        foreach (var waiter in granted)
        {
            waiter.Dispose();
            if (waiter.TrySetResult())
            {
                _metrics.RecordAdmissionWait(_timeProvider.GetElapsedTime(waiter.Enqueued));
            }
            else
            {
                // Lost the race with its timeout or cancellation: hand the permit on.
                Exit();
            }
        }
    }

    /// <summary>Removes a waiter that timed out (<paramref name="canceledBy"/> not canceled) or was canceled.</summary>
    private void Abandon(Waiter waiter, CancellationToken canceledBy)
    {
        lock (Lock)
        {
            if (waiter.Node is null)
            {
                return;
            }

            _waiters.Remove(waiter.Node);
            waiter.Node = null;
            Interlocked.Decrement(ref _queued);
        }

        waiter.Dispose();
        waiter.TrySetException(canceledBy.IsCancellationRequested ? new OperationCanceledException(canceledBy) : CreateTimeout());
    }

    private RedisPoolExhaustedException RejectQueueFull()
    {
        Interlocked.Increment(ref _rejectedQueueFull);
        return Reject(
            RedisPoolExhaustedReason.QueueFull,
            $"Pool '{_poolName}' rejected the command{ForNode()}: {Whose()} admission queue is full ({Queued.ToString(CultureInfo.InvariantCulture)} waiting of 'MaxQueueLength' {_maxQueueLength.ToString(CultureInfo.InvariantCulture)}, {DescribeInFlight()}). {AdviseInFlight("'MaxQueueLength'")}, or shed load before it reaches Redis.");
    }

    private RedisPoolExhaustedException CreateTimeout()
    {
        Interlocked.Increment(ref _rejectedQueueTimeout);
        _metrics.RecordTimeout(RedisPoolExhaustedReason.QueueTimeout);
        if (_held is { } held)
        {
            return Reject(
                RedisPoolExhaustedReason.QueueTimeout,
                $"Pool '{_poolName}': the command waited 'QueueTimeout' ({RedisPoolOptionsValidator.Format(_queueTimeout)}) for admission while the pool held commands: {held} ({Queued.ToString(CultureInfo.InvariantCulture)} queued). The command was not sent. Raise 'QueueTimeout' above the time a failover takes (about a second) to wait it out.");
        }

        return Reject(
            RedisPoolExhaustedReason.QueueTimeout,
            $"Pool '{_poolName}': the command{ForNode()} waited 'QueueTimeout' ({RedisPoolOptionsValidator.Format(_queueTimeout)}) for admission ({DescribeInFlight()}, {Queued.ToString(CultureInfo.InvariantCulture)} queued). {AdviseInFlight("'QueueTimeout'")}, or find what keeps commands in flight (a slow server, large values).");
    }

    /// <summary>The in-flight count against the limit, and for an adaptive limit its value, bounds and baseline.</summary>
    private string DescribeInFlight()
    {
        var inFlight = InFlight.ToString(CultureInfo.InvariantCulture);
        if (!_adaptive)
        {
            return $"{inFlight} in flight of 'MaxInFlight' {_maxInFlight.ToString(CultureInfo.InvariantCulture)}";
        }

        var baseline = _limit.Baseline is { } b ? $"{b.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms" : "not measured yet";
        return _node is null
            ? $"{inFlight} in flight of the adaptive in-flight limit {_limit.Limit.ToString(CultureInfo.InvariantCulture)}, which moves between {_limit.Floor.ToString(CultureInfo.InvariantCulture)} and 'MaxInFlight' {_maxInFlight.ToString(CultureInfo.InvariantCulture)} with the server's latency (baseline {baseline})"
            : $"{inFlight} in flight to node {_node} of its adaptive in-flight limit {_limit.Limit.ToString(CultureInfo.InvariantCulture)}, which moves between {_limit.Floor.ToString(CultureInfo.InvariantCulture)} and {_limit.Ceiling.ToString(CultureInfo.InvariantCulture)} ('MaxInFlight' {_maxInFlight.ToString(CultureInfo.InvariantCulture)}, less what is kept for the other nodes) with that node's latency (baseline {baseline})";
    }

    private string ForNode() => _node is null ? string.Empty : $" for node {_node}";

    private string Whose() => _node is null ? "the" : "the node's";

    /// <summary>Which knob helps: below its ceiling the adaptive limit is held down by queueing delay, and raising the ceiling changes nothing.</summary>
    private string AdviseInFlight(string other) =>
        !_adaptive || _limit.Limit >= _limit.Ceiling
            ? $"Raise {other} or 'MaxInFlight'"
            : _node is null
                ? $"The server answers slower than its baseline, so the adaptive limit is below 'MaxInFlight': raise {other}, or set 'AdaptiveInFlight' to false to admit up to 'MaxInFlight' whatever the latency"
                : $"Node {_node} answers slower than its baseline, so its adaptive limit is below 'MaxInFlight' (the other nodes keep their own): raise {other}, or set 'AdaptiveInFlight' to false to admit up to 'MaxInFlight' whatever the latency";

    /// <summary>Every rejection is counted in the metric and offered to the rate-limited log with the message the caller sees.</summary>
    private RedisPoolExhaustedException Reject(RedisPoolExhaustedReason reason, string message)
    {
        _metrics.RecordRejected(reason);
        _rejectionLog?.Record(reason, message);
        return new RedisPoolExhaustedException(reason, message);
    }

    public void ThrowIfClosed()
    {
        if (_closed)
        {
            ThrowDisposed();
        }
    }

    private void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(RedisPool), $"Pool '{_poolName}' is disposed.");

    private sealed class Waiter : TaskCompletionSource, IDisposable
    {
        private readonly AdmissionLimiter _owner;
        private ITimer? _timer;
        private CancellationTokenRegistration _registration;

        public Waiter(AdmissionLimiter owner, long enqueued)
            : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
            _owner = owner;
            Enqueued = enqueued;
        }

        public long Enqueued { get; }

        public LinkedListNode<Waiter>? Node { get; set; }

        public void Arm(TimeProvider timeProvider, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using (ExecutionContext.SuppressFlow())
            {
                _timer = timeProvider.CreateTimer(static state => ((Waiter)state!).OnTimeout(), this, timeout, Timeout.InfiniteTimeSpan);
            }

            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).OnCanceled(token), this);
            }
        }

        public void Dispose()
        {
            _timer?.Dispose();
            _registration.Dispose();
        }

        private void OnTimeout() => _owner.Abandon(this, CancellationToken.None);

        private void OnCanceled(CancellationToken token) => _owner.Abandon(this, token);
    }
}
