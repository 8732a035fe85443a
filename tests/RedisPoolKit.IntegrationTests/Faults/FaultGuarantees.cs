using System.Collections.Concurrent;
using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Faults;

/// <summary>The checks every fault test ends with, and the small load it runs the fault under.</summary>
internal static class FaultGuarantees
{
    /// <summary>Client names of every pool in the catalogue start with this service name.</summary>
    public const string ServiceName = "faults";

    /// <summary>The per-command bound the catalogue's pools take from StackExchange.Redis (<c>asyncTimeout</c>).</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The latest a command can learn it timed out: StackExchange.Redis checks timeouts on its 1 s heartbeat, so a
    /// command fails between <see cref="CommandTimeout"/> and one heartbeat later; 3 s more for a starved 2-core
    /// machine, whose timers fire late. What proves the timeout path ran is the <see cref="RedisTimeoutException"/>
    /// each of those tests asserts (the fault it injects would otherwise end in a reply), not this bound.
    /// </summary>
    public static readonly TimeSpan CommandTimeoutBound = CommandTimeout + TimeSpan.FromSeconds(1) + TimeSpan.FromSeconds(3);

    /// <summary>
    /// The command timeout of the tests whose guarantee is "fails at once, not after the command timeout": long enough
    /// that no scheduling delay on a loaded machine reaches it, so an answer before it proves the error did not wait
    /// for the timeout (the short <see cref="CommandTimeout"/> let a starved machine's noise be mistaken for one).
    /// </summary>
    public static readonly TimeSpan FailFastCommandTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How soon a pool serves again once the fault is gone: one break interval (at most 1.25 x MaxBreakDuration 1 s)
    /// + ConnectTimeout 1 s, and 3 s for a starved 2-core machine. A breaker whose backoff ran past MaxBreakDuration
    /// (0.5, 1, 2, 4, 8 s...) would miss it.
    /// </summary>
    public static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(1.25 + 1 + 3);

    /// <summary>How long a pool may take to settle after a fault: a deadline for polling, not a promise.</summary>
    public static readonly TimeSpan SettleDeadline = TimeSpan.FromSeconds(15);

    /// <summary>Options with a short command timeout, fast breaker and no monitor, so each fault plays out in seconds.</summary>
    public static RedisPoolOptions Options(string name, string endpoint, TimeSpan? commandTimeout = null) => new()
    {
        Name = name,
        ServiceName = ServiceName,
        Configuration = $"{endpoint},asyncTimeout={(int)(commandTimeout ?? CommandTimeout).TotalMilliseconds}",
        MaxConnections = 6,
        ConnectTimeout = TimeSpan.FromSeconds(1),
        QueueTimeout = TimeSpan.FromSeconds(1),
        Breaker = { BreakDuration = TimeSpan.FromMilliseconds(500), MaxBreakDuration = TimeSpan.FromSeconds(1) },
        Monitor = { Enabled = false },
    };

    /// <summary>The pool's sockets in the server's <c>CLIENT LIST</c>, found by their names.</summary>
    public static async Task<int> SocketsOnServerAsync(RedisServer server, string poolName) =>
        (await server.ClientListAsync()).Count(c => c.Name.StartsWith(ServiceName + ":", StringComparison.Ordinal) && c.Name.Contains($":{poolName}:", StringComparison.Ordinal));

    /// <summary>
    /// No slot or permit lost and no socket over budget: once the fault is over, nothing is in flight, queued, leased
    /// or waiting, and the pool, its budget and the server's CLIENT LIST each count at most MaxConnections sockets.
    /// </summary>
    public static async Task AssertSettledAsync(RedisPool pool, RedisServer server, ITestOutputHelper output)
    {
        await Eventually.TrueAsync(
            () =>
            {
                var s = pool.GetStatistics();
                return s.InFlight == 0 && s.Queued == 0 && s.LeasesUsed == 0 && s.LeaseWaiters == 0;
            },
            SettleDeadline,
            "nothing in flight, queued, leased or waiting once the fault is over");
        var statistics = pool.GetStatistics();
        var onServer = await SocketsOnServerAsync(server, pool.Name);
        output.WriteLine($"settled: {statistics.Sockets} sockets by the pool, {pool.Budget.Used} by its budget, {onServer} in CLIENT LIST (MaxConnections {statistics.MaxConnections}); circuit {statistics.CircuitState}");
        Assert.InRange(onServer, 0, statistics.MaxConnections);
        Assert.InRange(statistics.Sockets, 0, statistics.MaxConnections);
        Assert.InRange(pool.Budget.Used, 0, statistics.MaxConnections);
    }

    /// <summary>Waits until a SET and a GET through the pool succeed again; returns how long that took.</summary>
    public static async Task<TimeSpan> ServesAgainAsync(RedisPool pool, string key)
    {
        var db = pool.GetDatabase();
        var watch = Stopwatch.StartNew();
        await Eventually.TrueAsync(async () => await db.StringSetAsync(key, "ok") && await db.StringGetAsync(key) == "ok", SettleDeadline, "the pool serves again");
        return watch.Elapsed;
    }

    /// <summary>Runs <paramref name="call"/> and returns how long it took and what it threw, timed on the thread that completed it.</summary>
    public static Task<(TimeSpan Elapsed, Exception? Error)> Timed(Func<Task> call)
    {
        var started = Stopwatch.GetTimestamp();
        Task task;
        try
        {
            task = call();
        }
        catch (Exception ex)
        {
            return Task.FromResult<(TimeSpan, Exception?)>((Stopwatch.GetElapsedTime(started), ex));
        }

        return task.ContinueWith(
            t => (Stopwatch.GetElapsedTime(started), t.Exception?.InnerException ?? (t.IsCanceled ? new TaskCanceledException(t) : null)),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}

/// <summary>Workers that INCR one key through the pool until stopped, recording successes and every error by type.</summary>
internal sealed class IncrementLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _workers;
    private long _successes;
    private long _attempts;

    public IncrementLoad(IDatabase db, RedisKey key, int workers)
    {
        _workers = Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref _attempts);
                try
                {
                    await db.StringIncrementAsync(key);
                    Interlocked.Increment(ref _successes);
                }
                catch (Exception ex)
                {
                    Errors.Enqueue(ex);

                    // Pacing, not waiting for a state: a fast-failing loop would only burn the 2 cores the server needs.
                    await Task.Delay(5);
                }
            }
        })).ToArray();
    }

    public long Successes => Interlocked.Read(ref _successes);

    public long Attempts => Interlocked.Read(ref _attempts);

    public ConcurrentQueue<Exception> Errors { get; } = new();

    public string Summary() =>
        $"{Attempts} INCR sent, {Successes} succeeded, errors: "
        + string.Join(", ", Errors.GroupBy(e => e.GetType().Name).Select(g => $"{g.Key} x{g.Count()}"));

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}
