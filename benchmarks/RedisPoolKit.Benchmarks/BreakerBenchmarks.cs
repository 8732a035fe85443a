using System.Net;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace RedisPoolKit.Benchmarks;

/// <summary>The check every new socket pays while the max-clients breaker is closed: one volatile read.</summary>
[MemoryDiagnoser]
public class BreakerBenchmarks
{
    private const string EndPoints = "127.0.0.1:6379";

    private MaxClientsBreaker? _breaker;

    [GlobalSetup]
    public void Setup() => _breaker = new MaxClientsBreaker(
        "bench",
        new RedisPoolBreakerOptions(),
        [new IPEndPoint(IPAddress.Loopback, 6379)],
        useTls: false,
        TimeSpan.FromSeconds(1),
        TimeProvider.System,
        NullLogger.Instance,
        metrics: null);

    [GlobalCleanup]
    public void Cleanup() => _breaker!.Dispose();

    [Benchmark]
    public void ThrowIfOpenWhenClosed() => _breaker!.ThrowIfOpen(EndPoints);
}
