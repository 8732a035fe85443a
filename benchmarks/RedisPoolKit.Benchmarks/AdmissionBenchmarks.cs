using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;

namespace RedisPoolKit.Benchmarks;

/// <summary>
/// The admission fast path every command pays: take an in-flight permit and give it back, uncontended and
/// with room to spare. Decides what the pool's limiter is built on: a CAS counter (the baseline), the
/// framework's <see cref="ConcurrencyLimiter"/>, or <see cref="SemaphoreSlim"/>.
/// </summary>
[MemoryDiagnoser]
public class AdmissionBenchmarks
{
    private const int MaxInFlight = 1024;

    private readonly ConcurrencyLimiter _limiter = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = MaxInFlight,
        QueueLimit = MaxInFlight,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    private readonly SemaphoreSlim _semaphore = new(MaxInFlight, MaxInFlight);
    private int _inFlight;

    [Benchmark(Baseline = true)]
    public bool InterlockedCounter()
    {
        var current = Volatile.Read(ref _inFlight);
        while (current < MaxInFlight)
        {
            var seen = Interlocked.CompareExchange(ref _inFlight, current + 1, current);
            if (seen == current)
            {
                Interlocked.Decrement(ref _inFlight);
                return true;
            }

            current = seen;
        }

        return false;
    }

    [Benchmark]
    public bool ConcurrencyLimiterAttemptAcquire()
    {
        using var lease = _limiter.AttemptAcquire(1);
        return lease.IsAcquired;
    }

    [Benchmark]
    public bool SemaphoreSlimWaitZero()
    {
        if (!_semaphore.Wait(0))
        {
            return false;
        }

        _semaphore.Release();
        return true;
    }
}
