using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace RedisPoolKit.Benchmarks;

/// <summary>
/// What a blocking consumer pays to take a lease and give it back when the socket is already warm: one caller
/// alone (the fast path), and 8 tasks sharing 4 sockets (waiters handed sockets first come, first served).
/// Sockets are in-memory fakes, so only the pool's own bookkeeping is measured.
/// </summary>
[MemoryDiagnoser]
public class LeaseBenchmarks
{
    private const int Sockets = 4;
    private const int Tasks = 8;
    private const int RoundsPerTask = 1_000;

    private LeasePool? _pool;

    [GlobalSetup]
    public void Setup()
    {
        var options = new RedisPoolLeaseOptions { MaxLeases = Sockets, MaxWaiters = 64 };
        var clientIds = 100L;
        _pool = new LeasePool(
            options,
            "bench",
            (index, _) => ValueTask.FromResult<ILeaseConnection>(new InMemoryLeaseConnection(index, Interlocked.Increment(ref clientIds))),
            _ => Task.FromResult(true),
            () => "bench budget",
            TimeSpan.Zero,
            TimeProvider.System,
            NullLogger.Instance,
            new RedisPoolMetrics());

        // Warm: open every socket once so no benchmarked acquire connects.
        var leases = new RedisLease[Sockets];
        for (var i = 0; i < Sockets; i++)
        {
            leases[i] = _pool.AcquireAsync().AsTask().GetAwaiter().GetResult();
        }

        foreach (var lease in leases)
        {
            lease.Dispose();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _pool!.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public long AcquireReleaseUncontended()
    {
        var pending = _pool!.AcquireAsync();
        var lease = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
        var id = lease.Id;
        lease.Dispose();
        return id;
    }

    [Benchmark(OperationsPerInvoke = Tasks * RoundsPerTask)]
    public Task AcquireRelease8TasksOver4Sockets()
    {
        var workers = new Task[Tasks];
        for (var i = 0; i < Tasks; i++)
        {
            workers[i] = Task.Run(WorkerAsync);
        }

        return Task.WhenAll(workers);
    }

    private async Task WorkerAsync()
    {
        for (var i = 0; i < RoundsPerTask; i++)
        {
            var lease = await _pool!.AcquireAsync().ConfigureAwait(false);
            lease.Dispose();
        }
    }

    private sealed class InMemoryLeaseConnection(int index, long clientId) : ILeaseConnection
    {
        public IDatabase Database => throw new NotSupportedException("The benchmark socket has no database.");

        public string Name { get; } = $"bench:lease{index}";

        public long ClientId { get; } = clientId;

        public bool IsConnected => true;

        public bool HasPendingReplies => false;

        public ValueTask<bool> PingAsync(CancellationToken cancellationToken) => ValueTask.FromResult(true);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
