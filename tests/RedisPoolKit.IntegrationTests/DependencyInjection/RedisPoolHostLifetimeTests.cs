using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;
using static RedisPoolKit.IntegrationTests.DependencyInjection.PoolHost;

namespace RedisPoolKit.IntegrationTests.DependencyInjection;

/// <summary>Host start and stop against a server that is busy or absent: timing matters, so these run serially.</summary>
[Collection(FaultCollection.Name)]
public sealed class RedisPoolHostLifetimeTests(ITestOutputHelper output) : RedisTestBase(output)
{
    // Busy-waits on the server for ARGV[1] microseconds: in-flight work the test can see finish.
    private const string SpinScript =
        "local s = redis.call('TIME'); local start = s[1] * 1000000 + s[2]; " +
        "repeat local t = redis.call('TIME') until (t[1] * 1000000 + t[2]) - start >= tonumber(ARGV[1]) return 1";

    [Fact]
    public async Task Host_stop_with_work_in_flight_completes_it_within_the_grace_period_and_leaves_no_pool_sockets()
    {
        var redis = await StartServerAsync();
        var service = UniqueServiceName();
        var grace = TimeSpan.FromSeconds(5);
        using var host = Build(services => services.AddRedisPool("load", o =>
        {
            Configure(o, redis, service);
            o.ShutdownGracePeriod = grace;
        }));
        await host.StartAsync().WaitAsync(Bound);
        var db = host.Services.GetRequiredKeyedService<IRedisPool>("load").GetDatabase();

        // Eight 200 ms scripts run one after another on the server: ~1.6 s of work in flight at stop.
        var inFlight = Enumerable.Range(0, 8)
            .Select(_ => db.ScriptEvaluateAsync(SpinScript, values: [200_000]))
            .ToArray();
        var stopwatch = Stopwatch.StartNew();
        await host.StopAsync().WaitAsync(Bound);
        stopwatch.Stop();
        Output.WriteLine($"host stop took {stopwatch.Elapsed.TotalMilliseconds:F0} ms with ~1600 ms of work in flight");

        Assert.All(inFlight, t => Assert.True(t.IsCompletedSuccessfully, $"in-flight command ended {t.Status}: {t.Exception?.GetBaseException().Message}"));
        Assert.All(await Task.WhenAll(inFlight), r => Assert.Equal(1, (int)r));
        Assert.True(stopwatch.Elapsed < grace + TimeSpan.FromSeconds(1), $"host stop took {stopwatch.Elapsed}, grace period {grace}");
        await AssertNoSocketsOfAsync(redis, service);
    }

    [Fact]
    public async Task Host_start_fails_with_the_pools_exception_when_connection_is_required_and_the_server_is_down()
    {
        using var host = Build(services => services.AddRedisPool("cache", o =>
        {
            o.Configuration = $"127.0.0.1:{ClosedPort()}";
            o.ServiceName = UniqueServiceName();
            o.ConnectTimeout = TimeSpan.FromSeconds(2);
        }));
        var stopwatch = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAnyAsync<RedisException>(() => host.StartAsync().WaitAsync(Bound));

        Output.WriteLine($"start failed after {stopwatch.Elapsed.TotalMilliseconds:F0} ms: {ex.GetType().Name}: {ex.Message}");
        // A refused port fails at once; ConnectTimeout 2 s + 3 s for a starved 2-core machine bounds it (the first connect of
        // the process also pays for JIT).
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2 + 3), $"start failed after {stopwatch.Elapsed}, ConnectTimeout 2 s");
    }

    [Fact]
    public async Task Host_starts_degraded_when_connection_is_not_required_and_the_server_is_down()
    {
        using var host = Build(services => services.AddRedisPool("cache", o =>
        {
            o.Configuration = $"127.0.0.1:{ClosedPort()}";
            o.ServiceName = UniqueServiceName();
            o.ConnectTimeout = TimeSpan.FromSeconds(2);
            o.RequireConnectionOnStart = false;
        }));

        await host.StartAsync().WaitAsync(Bound);

        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("cache");
        Assert.Equal("cache", pool.GetStatistics().PoolName);
        await Eventually.TrueAsync(() => pool.GetStatistics().Sockets == 0, TimeSpan.FromSeconds(15), "a refused connect gives its budget slot back");
        await host.StopAsync().WaitAsync(Bound);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
