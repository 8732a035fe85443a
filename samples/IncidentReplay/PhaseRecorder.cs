using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;
using RedisPoolKit;
using StackExchange.Redis;

namespace IncidentReplay;

internal readonly record struct ServerSample(double Seconds, long ConnectedClients, long BlockedClients, long RejectedConnections, int? PoolSockets);

/// <summary>Something the pools themselves reported (a breaker transition, a utilization level change, rejections in one second).</summary>
internal readonly record struct PoolSignal(double Seconds, string Text);

/// <summary>Everything one phase measured, from the clients and from the server.</summary>
internal sealed class PhaseRecorder
{
    public const string MaxClientsError = "max clients";

    /// <summary>How long a caller (an HTTP client upstream) waits for a request before it gives up.</summary>
    public static readonly TimeSpan RequestBudget = TimeSpan.FromSeconds(2);

    private const long HighestLatencyMicros = 120_000_000;
    private readonly Stopwatch _clock = new();
    private readonly LongConcurrentHistogram _latency = new(1, HighestLatencyMicros, 3);
    private readonly ConcurrentDictionary<int, LongConcurrentHistogram> _latencyBySecond = new();
    private readonly ConcurrentDictionary<int, long> _errorsBySecond = new();
    private readonly ConcurrentDictionary<int, long> _completedBySecond = new();
    private readonly ConcurrentDictionary<int, long> _offeredBySecond = new();
    private readonly ConcurrentDictionary<int, long> _rejectedBySecond = new();
    private readonly ConcurrentDictionary<string, long> _offeredByService = new();
    private readonly ConcurrentDictionary<string, long> _completedByService = new();
    private readonly ConcurrentDictionary<string, long> _consumerErrors = new();
    private readonly ConcurrentQueue<PoolSignal> _signals = new();
    private long _outstanding;
    private readonly ConcurrentDictionary<string, long> _errorsByKind = new();
    private readonly ConcurrentDictionary<string, long> _errorsByService = new();
    private readonly ConcurrentDictionary<string, int> _consumed = new();
    private readonly ConcurrentDictionary<string, byte> _produced = new();
    private readonly ConcurrentDictionary<string, byte> _pushFailed = new();
    private readonly List<ServerSample> _samples = [];
    private long _requests;
    private long _successes;
    private long _rejectedBaseline = -1;
    private long _latestRejected;

    public PhaseRecorder(string name, string title)
    {
        Name = name;
        Title = title;
    }

    public string Name { get; }

    public string Title { get; }

    public TimeSpan Elapsed => _clock.Elapsed;

    public string? FailedToRun { get; set; }

    public TimeSpan WallTime { get; private set; }

    /// <summary>Requests that arrived (open loop: the same schedule in every phase).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests answered within the request budget.</summary>
    public long Successes => Interlocked.Read(ref _successes);

    /// <summary>Requests that failed, timed out or were shed: with <see cref="Successes"/> they add up to <see cref="Requests"/>.</summary>
    public long Errors => _errorsByKind.Values.Sum();

    /// <summary>Requests started and not yet answered or given up on.</summary>
    public long Outstanding => Interlocked.Read(ref _outstanding);

    public IReadOnlyDictionary<string, long> OfferedByService => _offeredByService;

    public IReadOnlyDictionary<string, long> CompletedByService => _completedByService;

    /// <summary>notification-worker BLPOP errors: not requests, counted on their own.</summary>
    public IReadOnlyDictionary<string, long> ConsumerErrors => _consumerErrors;

    public IReadOnlyList<PoolSignal> Signals => [.. _signals.OrderBy(s => s.Seconds)];

    public void Signal(string text) => _signals.Enqueue(new PoolSignal(_clock.Elapsed.TotalSeconds, text));

    public IReadOnlyDictionary<string, long> ErrorsByKind => _errorsByKind;

    public IReadOnlyDictionary<string, long> ErrorsByService => _errorsByService;

    public long MaxClientsErrors => _errorsByKind.Where(e => e.Key.StartsWith(MaxClientsError, StringComparison.Ordinal)).Sum(e => e.Value);

    public HistogramBase Latency => _latency;

    public IReadOnlyList<ServerSample> Samples
    {
        get
        {
            lock (_samples)
            {
                return [.. _samples];
            }
        }
    }

    public long PeakConnectedClients => Samples.Select(s => s.ConnectedClients).DefaultIfEmpty().Max();

    public long PeakBlockedClients => Samples.Select(s => s.BlockedClients).DefaultIfEmpty().Max();

    public long RejectedConnectionsDelta => _rejectedBaseline < 0 ? 0 : Interlocked.Read(ref _latestRejected) - _rejectedBaseline;

    public int Produced => _produced.Count;

    public int PushFailures => _pushFailed.Count;

    public int ConsumedExactlyOnce => _consumed.Count(c => c.Value == 1 && _produced.ContainsKey(c.Key));

    public int Duplicated => _consumed.Count(c => c.Value > 1);

    /// <summary>Items whose push failed on the client but which the server had stored and a consumer received.</summary>
    public int ConsumedAfterFailedPush => _consumed.Keys.Count(k => !_produced.ContainsKey(k));

    public int LeftInQueue { get; set; }

    /// <summary>Acknowledged by the server, never received by a consumer and no longer in the queue.</summary>
    public int Lost { get; private set; }

    public void Start() => _clock.Start();

    public void Stop() => WallTime = _clock.Elapsed;

    public void AddSample(long connected, long blocked, long rejectedTotal, int? poolSockets = null)
    {
        if (_rejectedBaseline < 0)
        {
            _rejectedBaseline = rejectedTotal;
        }

        Interlocked.Exchange(ref _latestRejected, rejectedTotal);
        lock (_samples)
        {
            _samples.Add(new ServerSample(_clock.Elapsed.TotalSeconds, connected, blocked, rejectedTotal, poolSockets));
        }
    }

    /// <summary>An arrival: counted as offered, then run (or shed) by the caller.</summary>
    public void Offer(string service)
    {
        Interlocked.Increment(ref _requests);
        _offeredByService.AddOrUpdate(service, 1, (_, n) => n + 1);
        _offeredBySecond.AddOrUpdate(Second, 1, (_, n) => n + 1);
    }

    /// <summary>An arrival its instance had no room for: failed at once.</summary>
    public void Shed(string service) => RecordError(service, $"shed: instance at its limit of {Scenario.MaxConcurrentPerInstance} concurrent requests");

    /// <summary>Runs one offered request within the request budget; never cancelled by the end of the load, so every arrival ends as completed or failed.</summary>
    public async Task MeasureAsync(string service, Func<Task> request)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _outstanding);
        try
        {
            await request().WaitAsync(RequestBudget, CancellationToken.None).ConfigureAwait(false);
            Interlocked.Increment(ref _successes);
            _completedByService.AddOrUpdate(service, 1, (_, n) => n + 1);
            _completedBySecond.AddOrUpdate(Second, 1, (_, n) => n + 1);
            Record(Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex)
        {
            RecordError(service, Classify(ex));
            if (ex is RedisPoolExhaustedException)
            {
                _rejectedBySecond.AddOrUpdate(Second, 1, (_, n) => n + 1);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _outstanding);
        }
    }

    public void RecordError(string service, string kind)
    {
        _errorsByKind.AddOrUpdate(kind, 1, (_, n) => n + 1);
        _errorsByService.AddOrUpdate(service, 1, (_, n) => n + 1);
        _errorsBySecond.AddOrUpdate(Second, 1, (_, n) => n + 1);
    }

    public void RecordConsumerError(Exception ex) => _consumerErrors.AddOrUpdate(Classify(ex), 1, (_, n) => n + 1);

    /// <summary>Pool rejections (RedisPoolExhaustedException) per second, for the signals timeline.</summary>
    public IEnumerable<(int Second, long Rejected)> RejectionsPerSecond() => _rejectedBySecond.OrderBy(e => e.Key).Select(e => (e.Key, e.Value));

    public void Produce(string id) => _produced.TryAdd(id, 0);

    public void PushFailed(string id) => _pushFailed.TryAdd(id, 0);

    public void Consume(string id) => _consumed.AddOrUpdate(id, 1, (_, n) => n + 1);

    public void SettleQueue(IReadOnlyCollection<string> leftInQueue)
    {
        LeftInQueue = leftInQueue.Count;
        var left = leftInQueue.ToHashSet(StringComparer.Ordinal);
        Lost = _produced.Keys.Count(id => !_consumed.ContainsKey(id) && !left.Contains(id));
    }

    /// <summary>Offered, completed and failed requests per second over a rolling window of <paramref name="window"/> seconds, every second of the phase.</summary>
    public IEnumerable<(int Second, double Offered, double Completed, double Failed)> RatesPerSecond(int window) =>
        FailedToRun is not null
            ? []
            : Enumerable.Range(0, (int)Math.Ceiling(WallTime.TotalSeconds)).Select(s => (s, Rolling(_offeredBySecond, s, window), Rolling(_completedBySecond, s, window), Rolling(_errorsBySecond, s, window)));

    /// <summary>p99 of the requests completed in the last <paramref name="window"/> seconds, at every second that has some.</summary>
    public IEnumerable<(int Second, double P99Millis)> RollingP99(int window)
    {
        var seconds = (int)Math.Ceiling(WallTime.TotalSeconds);
        for (var s = 0; s < seconds; s++)
        {
            var merged = new LongHistogram(HighestLatencyMicros, 2);
            for (var i = Math.Max(0, s - window + 1); i <= s; i++)
            {
                if (_latencyBySecond.TryGetValue(i, out var h))
                {
                    merged.Add(h);
                }
            }

            if (merged.TotalCount > 0)
            {
                yield return (s, merged.GetValueAtPercentile(99) / 1000.0);
            }
        }
    }

    private static double Rolling(ConcurrentDictionary<int, long> perSecond, int second, int window)
    {
        long sum = 0;
        var from = Math.Max(0, second - window + 1);
        for (var i = from; i <= second; i++)
        {
            sum += perSecond.GetValueOrDefault(i);
        }

        return (double)sum / (second - from + 1);
    }

    private int Second => (int)_clock.Elapsed.TotalSeconds;

    private void Record(TimeSpan latency)
    {
        var micros = Math.Clamp((long)latency.TotalMicroseconds, 1, HighestLatencyMicros);
        _latency.RecordValue(micros);
        _latencyBySecond.GetOrAdd(Second, _ => new LongConcurrentHistogram(1, HighestLatencyMicros, 2)).RecordValue(micros);
    }

    /// <summary>
    /// StackExchange.Redis never surfaces the server's "max number of clients reached": a refused
    /// socket shows up as a RedisConnectionException. While the server's rejected_connections is rising, that
    /// is what such an exception means; otherwise it is counted as a plain connection error.
    /// </summary>
    public string Classify(Exception ex) => ex switch
    {
        RedisPoolExhaustedException exhausted => $"pool rejected ({exhausted.Reason})",
        RedisPoolCircuitOpenException => MaxClientsError + " (circuit open, failed fast)",
        RedisConnectionException when RejectedConnectionsDelta > 0 || ex.Message.Contains("max number of clients", StringComparison.OrdinalIgnoreCase) => MaxClientsError,
        RedisConnectionException => "connection",
        RedisTimeoutException => "timeout (StackExchange.Redis)",
        TimeoutException => "timeout (no answer within the 2 s request budget)",
        NotImplementedException => "not implemented",
        _ => $"other ({ex.GetType().Name})",
    };
}
