using Microsoft.Extensions.Time.Testing;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Leases;

public sealed class LeasePoolRetireNodeTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();

    [Fact]
    public async Task Retiring_a_node_closes_its_idle_sockets_and_fails_the_held_lease_by_name_then_closes_it_on_return()
    {
        await using var pool = CreatePool(_time, _connector, o => o.MaxLeases = 4);
        var held = await pool.AcquireAsync();
        var idle = await pool.AcquireAsync();
        var elsewhere = await pool.AcquireAsync();
        held.Socket().Node = "10.0.0.1:6379";
        idle.Socket().Node = "10.0.0.1:6379";
        elsewhere.Socket().Node = "10.0.0.2:6379";
        var idleSocket = idle.Socket();
        var heldSocket = held.Socket();
        var elsewhereSocket = elsewhere.Socket();
        idle.Dispose();
        elsewhere.Dispose();

        var (closed, failing) = pool.RetireNode("10.0.0.1:6379", "10.0.0.1:6379 is no longer the master");

        Assert.Equal((1, 1), (closed, failing));
        await WaitUntil(() => idleSocket.IsDisposed, "the idle socket on the retired node closes");
        Assert.False(elsewhereSocket.IsDisposed);
        var refused = await Assert.ThrowsAsync<RedisPoolException>(() => held.BlockingLeftPopAsync(["queue"], TimeSpan.FromSeconds(1)));
        Assert.Contains("10.0.0.1:6379 is no longer the master", refused.Message, StringComparison.Ordinal);
        Assert.Contains("was not sent", refused.Message, StringComparison.Ordinal);
        Assert.False(heldSocket.IsDisposed, "a held socket stays its holder's until it comes back");

        held.Dispose();
        await WaitUntil(() => heldSocket.IsDisposed, "the retired socket closes when it comes back");
        Assert.Equal(1, pool.Idle);
        Assert.Same(elsewhereSocket, (await pool.AcquireAsync()).Socket());
    }
}
