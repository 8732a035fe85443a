using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Breaker;

public sealed class NodeBreakersTests : IAsyncDisposable
{
    private const string ClusterMaxClients = "-ERR max number of clients + cluster connections reached";
    private static readonly EndPoint Full = new IPEndPoint(IPAddress.Loopback, 7001);
    private static readonly EndPoint Healthy = new IPEndPoint(IPAddress.Loopback, 7002);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly Dictionary<EndPoint, FakeProbe> _probes = new()
    {
        [Full] = new FakeProbe { Greeting = () => new ProbeResult(ProbeOutcome.MaxClients, ClusterMaxClients) },
        [Healthy] = new FakeProbe { Greeting = () => new ProbeResult(ProbeOutcome.Silent) },
    };

    private readonly NodeBreakers _breakers;
    private readonly ConnectionBudget _budget = new(1, "127.0.0.1:7001");

    public NodeBreakersTests() =>
        _breakers = new NodeBreakers(endPoint => new MaxClientsBreaker(
            "orders",
            new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(2), MaxBreakDuration = TimeSpan.FromSeconds(2) },
            [endPoint],
            useTls: false,
            TimeSpan.FromSeconds(1),
            _time,
            new FakeLogger(),
            metrics: null,
            random: new FixedRandom(0.0),
            probe: _probes[endPoint],
            probeBudget: target => _budget.Node(RedisConnectionFactory.Format(target))));

    [Fact]
    public void The_cluster_text_of_a_full_node_is_max_clients() =>
        Assert.True(MaxClientsProbe.IsMaxClientsError(ClusterMaxClients));

    [Fact]
    public async Task A_full_node_opens_its_own_breaker_only()
    {
        Assert.Null(_breakers.Refuses("127.0.0.1:7001"));

        await _breakers.For(Full).OnSocketFailedAsync(Failure(ConnectionFailureType.SocketClosed, "SocketClosed"), CancellationToken.None);
        await _breakers.For(Healthy).OnSocketFailedAsync(Failure(ConnectionFailureType.SocketClosed, "SocketClosed"), CancellationToken.None);

        Assert.Equal(RedisPoolCircuitState.Open, _breakers.StateOf("127.0.0.1:7001"));
        Assert.Equal(RedisPoolCircuitState.Closed, _breakers.StateOf("127.0.0.1:7002"));
        Assert.Equal(RedisPoolCircuitState.Closed, _breakers.StateOf("127.0.0.1:7003"));
        Assert.True(_breakers.AnyNotClosed);
        Assert.Equal(RedisPoolCircuitState.Open, _breakers.Refuses("127.0.0.1:7001"));
        Assert.Null(_breakers.Refuses("127.0.0.1:7002"));
        Assert.Equal(1, _breakers.For(Full).ReconnectsSuppressed);
    }

    [Fact]
    public async Task A_command_that_found_no_connection_to_the_open_node_fails_naming_it()
    {
        await _breakers.For(Full).OnSocketFailedAsync(Failure(ConnectionFailureType.SocketClosed, "SocketClosed"), CancellationToken.None);

        var toFull = Failure(ConnectionFailureType.UnableToConnect, "No connection is active/available to service this operation: SET k");
        toFull.Data["redis-server"] = "127.0.0.1:7001";
        var toHealthy = Failure(ConnectionFailureType.UnableToConnect, "No connection is active/available to service this operation: SET k");
        toHealthy.Data["redis-server"] = "127.0.0.1:7002";

        var translated = Assert.IsType<RedisPoolCircuitOpenException>(_breakers.Translate(toFull));
        Assert.Contains("node 127.0.0.1:7001", translated.Message, StringComparison.Ordinal);
        Assert.Contains("max-clients breaker is Open", translated.Message, StringComparison.Ordinal);
        Assert.Contains(ClusterMaxClients, translated.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(2), translated.RetryAfter);
        Assert.Null(_breakers.Translate(toHealthy));
        Assert.Null(_breakers.Translate(new TimeoutException("127.0.0.1:7001")));
    }

    [Fact]
    public async Task The_node_is_probed_once_per_break_and_closes_when_it_has_room()
    {
        await _breakers.For(Full).OnSocketFailedAsync(Failure(ConnectionFailureType.SocketClosed, "SocketClosed"), CancellationToken.None);
        var probe = _probes[Full];
        for (var i = 0; i < 10; i++)
        {
            _breakers.Refuses("127.0.0.1:7001");
        }

        Assert.Equal(0, probe.PingCalls);
        probe.Ping = () => Task.FromResult(new ProbeResult(ProbeOutcome.MaxClients, ClusterMaxClients));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Open, _breakers.StateOf("127.0.0.1:7001"));

        probe.Ping = () => Task.FromResult(new ProbeResult(ProbeOutcome.Replied, "+PONG"));
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(2, probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breakers.StateOf("127.0.0.1:7001"));
        Assert.False(_breakers.AnyNotClosed);
        Assert.Null(_breakers.Refuses("127.0.0.1:7001"));
    }

    [Fact]
    public async Task The_half_open_probe_counts_against_its_nodes_budget()
    {
        await _breakers.For(Full).OnSocketFailedAsync(Failure(ConnectionFailureType.SocketClosed, "SocketClosed"), CancellationToken.None);
        var probe = _probes[Full];
        var node = _budget.Node("127.0.0.1:7001");
        var usedWhileProbing = -1;
        probe.Ping = () =>
        {
            usedWhileProbing = node.Used;
            return Task.FromResult(new ProbeResult(ProbeOutcome.MaxClients, ClusterMaxClients));
        };

        // A free slot: the probe holds it while it runs and gives it back.
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, probe.PingCalls);
        Assert.Equal(1, usedWhileProbing);
        Assert.Equal(0, node.Used);
        Assert.Equal(RedisPoolCircuitState.Open, _breakers.StateOf("127.0.0.1:7001"));

        // Now the node's one slot is held by a socket of the pool that is open: no probe socket, which would be one too
        // many there; and no new socket can open there anyway, so the breaker closes and the open socket serves.
        Assert.True(node.TryReserve(SocketRole.Lease));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breakers.StateOf("127.0.0.1:7001"));
        Assert.Equal(1, node.Used);
    }

    public ValueTask DisposeAsync() => _breakers.DisposeAsync();

    private static RedisConnectionException Failure(ConnectionFailureType type, string message) =>
        new(type, CommandFlags.None, message, null, CommandStatus.Unknown);
}
