using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using RedisPoolKit.Tests.Leases;
using RedisPoolKit.Tests.Routing;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Fleet;

public sealed class FleetBudgetEnforcerTests
{
    private const string Master = "10.0.0.1:7000";
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();

    [Fact]
    public async Task A_cluster_masters_idle_leases_close_when_that_master_holds_more_than_the_share()
    {
        await using var keyless = CreatePool(_time, _connector);
        await using var keyed = new LeasePool(
            new RedisPoolLeaseOptions { MaxLeases = 4 }, "test", _connector.ConnectAsync, _ => Task.FromResult(true), () => "budget", TimeSpan.Zero, _time, NullLogger.Instance, new RedisPoolMetrics(), new IPEndPoint(IPAddress.Parse("10.0.0.1"), 7000));
        await using var multiplexers = new MultiplexerSetFixture();
        var budget = new ConnectionBudget(8, "10.0.0.9:7000");

        // Three idle lease sockets and a multiplexer socket on one master, a multiplexer socket on another.
        var leases = new[] { await keyed.AcquireAsync(), await keyed.AcquireAsync(), await keyed.AcquireAsync() };
        foreach (var lease in leases)
        {
            Assert.True(budget.TryReserve(Master, SocketRole.Lease));
            lease.Dispose();
        }

        Assert.True(budget.TryReserve(Master, SocketRole.Multiplexer));
        Assert.True(budget.TryReserve("10.0.0.2:7000", SocketRole.Multiplexer));
        var enforcer = new FleetBudgetEnforcer(budget, multiplexers.Set, () => [keyless, keyed], socketsPerMultiplexer: 1);

        // The share drops to 2: that master holds 4, so two of its idle lease sockets close.
        enforcer.Apply(2);

        await WaitUntil(() => _connector.Created.Count(c => c.IsDisposed) == 2, "two idle lease sockets on the master above its share close");
        Assert.Equal(1, keyed.Idle);
        Assert.True(enforcer.IsOverLimit(keyed), "the master still counts 4 of a share of 2 until the closed sockets give their slots back");
        await using var other = new LeasePool(
            new RedisPoolLeaseOptions { MaxLeases = 4 }, "test", _connector.ConnectAsync, _ => Task.FromResult(true), () => "budget", TimeSpan.Zero, _time, NullLogger.Instance, new RedisPoolMetrics(), new IPEndPoint(IPAddress.Parse("10.0.0.2"), 7000));
        Assert.False(enforcer.IsOverLimit(other), "a master within the share keeps its returned leases");
    }
}
