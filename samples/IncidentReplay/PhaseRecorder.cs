using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;
using RedisPoolKit;
using StackExchange.Redis;

namespace IncidentReplay;

internal readonly record struct ServerSample(double Seconds, long ConnectedClients, long BlockedClients, long RejectedConnections);

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

    public long Requests => Interlocked.Read(ref _requests);

    public long Successes => Interlocked.Read(ref _successes);

    public long Errors => _errorsByKind.Values.Sum();

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

    public void AddSample(long connected, long blocked, long rejectedTotal)
    {
        if (_rejectedBaseline < 0)
        {
            _rejectedBaseline = rejectedTotal;
        }

        Interlocked.Exchange(ref _latestRejected, rejectedTotal);
        lock (_samples)
        {
            _samples.Add(new ServerSample(_clock.Elapsed.TotalSeconds, connected, blocked, rejectedTotal));
        }
    }

    public async Task MeasureAsync(string service, Func<Task> request, CancellationToken stopping)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _requests);
        try
        {
            await request().WaitAsync(RequestBudget, CancellationToken.None).ConfigureAwait(false);
            Interlocked.Increment(ref _successes);
            Record(Stopwatch.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            Interlocked.Decrement(ref _requests);
        }
        catch (Exception ex)
        {
            // The caller waited this long for its error: it belongs in the latency a user saw.
            Record(Stopwatch.GetElapsedTime(started));
            RecordError(service, ex);
        }
    }

    public void RecordError(string service, Exception ex)
    {
        _errorsByKind.AddOrUpdate(Classify(ex), 1, (_, n) => n + 1);
        _errorsByService.AddOrUpdate(service, 1, (_, n) => n + 1);
        _errorsBySecond.AddOrUpdate(Second, 1, (_, n) => n + 1);
    }

    public void Produce(string id) => _produced.TryAdd(id, 0);

    public void PushFailed(string id) => _pushFailed.TryAdd(id, 0);

    public void Consume(string id) => _consumed.AddOrUpdate(id, 1, (_, n) => n + 1);

    public void SettleQueue(IReadOnlyCollection<string> leftInQueue)
    {
        LeftInQueue = leftInQueue.Count;
        var left = leftInQueue.ToHashSet(StringComparer.Ordinal);
        Lost = _produced.Keys.Count(id => !_consumed.ContainsKey(id) && !left.Contains(id));
    }

    /// <summary>Every second of the phase, zeros included, so a phase without errors still draws its line.</summary>
    public IEnumerable<(int Second, long Errors)> ErrorsPerSecond() =>
        FailedToRun is not null
            ? []
            : Enumerable.Range(0, (int)Math.Ceiling(WallTime.TotalSeconds)).Select(s => (s, _errorsBySecond.GetValueOrDefault(s)));

    public IEnumerable<(int Second, double P99Millis)> P99PerSecond() =>
        _latencyBySecond.OrderBy(e => e.Key)
            .Where(e => e.Value.TotalCount > 0)
            .Select(e => (e.Key, e.Value.GetValueAtPercentile(99) / 1000.0));

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
    private string Classify(Exception ex) => ex switch
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
