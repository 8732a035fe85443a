using System.Runtime.CompilerServices;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>
/// The whole integration suite shares one process on two cores, and some of it blocks thread-pool threads on
/// purpose (the sync API waiting for admission, the naive side of the incident replay, synchronous disposal).
/// With the default minimum (one thread per core) the pool then adds threads about every 0.5 s, and a timer
/// callback queued behind them, such as the one ending a wait at QueueTimeout or AcquireTimeout, ran 0.5-0.7 s late
/// in CI (1.09 s for a 0.5 s AcquireTimeout). The timing tests measure the pool's timeouts, not that ramp.
/// </summary>
internal static class ThreadPoolWarmup
{
    [ModuleInitializer]
    internal static void RaiseMinimumThreads()
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(completionPorts, 64));
    }
}
