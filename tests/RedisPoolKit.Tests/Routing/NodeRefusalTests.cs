using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using RedisPoolKit.Tests.Breaker;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Routing;

/// <summary>
/// A command for a cluster node whose breaker is open is refused before it is sent; an asynchronous command says so
/// through its task, like every other refusal, so callers that start several commands and await them together
/// still get a task for each.
/// </summary>
public sealed class NodeRefusalTests : IAsyncLifetime
{
    private const string PoolName = "node-refusal";
    private const string FullNode = "127.0.0.1:7001";
    private static readonly EndPoint Full = new IPEndPoint(IPAddress.Loopback, 7001);
    private static readonly RedisKey FullKey = "5";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly MultiplexerSetFixture _f = new(minMultiplexers: 1, maxMultiplexers: 1);
    private readonly RedisPoolMetrics _metrics = new(PoolName, meterFactory: null, statistics: null, new RedisPoolOptions());
    private readonly ConnectionBudget _budget = new(1, FullNode);
    private readonly NodeBreakers _breakers;
    private readonly PooledDatabase _db;

    public NodeRefusalTests()
    {
        _breakers = new NodeBreakers(endPoint => new MaxClientsBreaker(
            PoolName,
            new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(2), MaxBreakDuration = TimeSpan.FromSeconds(2) },
            [endPoint],
            useTls: false,
            TimeSpan.FromSeconds(1),
            _time,
            new FakeLogger(),
            metrics: null,
            random: new FixedRandom(0.0),
            probe: new FakeProbe { Greeting = () => new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients + cluster connections reached") },
            probeBudget: target => _budget.Node(RedisConnectionFactory.Format(target))));
        var admission = new AdmissionLimiter(PoolName, 64, maxQueueLength: 1, TimeSpan.FromSeconds(1), _f.Time, _metrics);
        var nodes = new NodeAdmission(node => new AdmissionLimiter(PoolName, 64, maxQueueLength: 1, TimeSpan.FromSeconds(1), _f.Time, _metrics, adaptiveLimit: new AdaptiveInFlightLimit(4, 60, _f.Time), node: node));
        nodes.Assign([(FullNode, 0, 99)], key => int.Parse((string)key!, System.Globalization.CultureInfo.InvariantCulture));
        var router = new CommandRouter(PoolName, admission, _f.Set, _metrics, _breakers, _f.Time, TimeSpan.FromSeconds(1));
        router.UseNodeLimits(nodes);
        _db = new PooledDatabase(router, -1, null!);
    }

    public async Task InitializeAsync()
    {
        await _f.Set.EnsureMinimumAsync(CancellationToken.None);
        await _f.NextAddedAsync();
        await _breakers.For(Full).OnSocketFailedAsync(
            new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed", null, CommandStatus.Unknown),
            CancellationToken.None);
        Assert.Equal(RedisPoolCircuitState.Open, _breakers.StateOf(FullNode));
    }

    public async Task DisposeAsync()
    {
        await _f.DisposeAsync();
        _metrics.Dispose();
    }

    [Fact]
    public async Task An_async_command_for_a_node_with_its_breaker_open_returns_a_faulted_task_instead_of_throwing()
    {
        var single = _db.StringGetAsync(FullKey);
        var multi = _db.StringGetAsync([FullKey, FullKey]);
        var keyDelete = _db.KeyDeleteAsync(FullKey);

        var refused = await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => single);
        Assert.Contains(FullNode, refused.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => multi);
        await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => keyDelete);
    }

    [Fact]
    public void A_sync_command_for_a_node_with_its_breaker_open_throws() =>
        Assert.Throws<RedisPoolCircuitOpenException>(() => _db.StringGet(FullKey));
}
