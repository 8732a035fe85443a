using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Breaker;

/// <summary>A breaker opened against a master that died, then Sentinel moved the pool to a new one.</summary>
public sealed class BreakerServerMovedTests
{
    private static readonly EndPoint s_old = new DnsEndPoint("cache-1", 6379);
    private static readonly EndPoint s_new = new DnsEndPoint("cache-2", 6379);

    [Fact]
    public void An_open_breaker_probes_the_new_server_at_once_when_the_pool_moves()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var endPoints = new List<EndPoint> { s_old };
        var probes = new List<EndPoint>();
        BreakerStateController? controller = null;
        using var created = controller = new BreakerStateController(
            "orders", new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(30), MaxBreakDuration = TimeSpan.FromMinutes(2) }, endPoints,
            TimeSpan.FromSeconds(1), time, NullLogger.Instance, new FixedRandom(0.0), () => probes.Add(controller!.ProbeTarget), _ => { });
        var refused = new MaxClientsClassifier.Classification(MaxClientsClassifier.FailureKind.ConnectFailure, "cache-1:6379 refused the connection", s_old);
        for (var i = 0; i < 3; i++)
        {
            controller.OnFailureClassified(refused, new InvalidOperationException("refused"));
        }

        Assert.Equal(RedisPoolCircuitState.Open, controller.State);
        Assert.Equal(s_old, controller.ProbeTarget);

        // The factory points the shared endpoint list at the new master, and tells the breaker.
        endPoints[0] = s_new;
        controller.OnServerMoved("the pool moved to cache-2:6379");

        Assert.Equal(RedisPoolCircuitState.HalfOpen, controller.State);
        Assert.Equal([s_new], probes);
        Assert.Null(controller.FailedEndPoint);
    }
}
