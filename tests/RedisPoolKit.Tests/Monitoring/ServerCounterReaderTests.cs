using System.Net;
using System.Reflection;
using Microsoft.Extensions.Logging.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Monitoring;

/// <summary>
/// Where maxclients comes from on a server that does not report it in INFO clients (before Redis 6.2) and has
/// CONFIG disabled (managed services): Monitor.MaxClients, else no utilization, said once.
/// </summary>
public sealed class ServerCounterReaderTests
{
    [Fact]
    public async Task Without_maxclients_from_INFO_or_CONFIG_the_option_stands_in()
    {
        var logger = new FakeLogger();
        var reader = new RedisServerCounterReader(() => [FakeServer.Multiplexer()], "managed", logger, maxClients: 256);

        var counters = Assert.Single((await reader.ReadAsync(CancellationToken.None))!.Readings);

        Assert.Equal(256, counters.MaxClients);
        Assert.Equal(64.0 / 256, counters.Utilization);
        Assert.Equal("127.0.0.1:6379", counters.EndPoint);
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 503);
    }

    [Fact]
    public async Task Without_maxclients_from_anywhere_counts_are_read_without_utilization_and_that_is_said_once()
    {
        var logger = new FakeLogger();
        var reader = new RedisServerCounterReader(() => [FakeServer.Multiplexer()], "managed", logger);

        for (var i = 0; i < 3; i++)
        {
            var counters = Assert.Single((await reader.ReadAsync(CancellationToken.None))!.Readings);
            Assert.Equal(64, counters.ConnectedClients);
            Assert.Null(counters.Utilization);
        }

        var said = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 503);
        Assert.Contains("Monitor.MaxClients", said.Message, StringComparison.Ordinal);
        Assert.Null(reader.Unavailable);
    }

    [Fact]
    public async Task Every_node_is_read_over_a_multiplexer_whose_socket_to_it_is_up_and_a_node_down_everywhere_is_not_read()
    {
        var logger = new FakeLogger();
        var first = FakeCluster.Of(("127.0.0.1:7000", true, 10), ("127.0.0.1:7001", false, 20), ("127.0.0.1:7002", false, 30));
        var second = FakeCluster.Of(("127.0.0.1:7000", true, 10), ("127.0.0.1:7001", true, 20), ("127.0.0.1:7002", false, 30));
        var reader = new RedisServerCounterReader(() => [first.Multiplexer, second.Multiplexer], "cluster", logger);

        var readout = await reader.ReadAsync(CancellationToken.None);

        Assert.Equal(["127.0.0.1:7000", "127.0.0.1:7001"], readout!.Readings.Select(r => r.EndPoint).Order(StringComparer.Ordinal));
        Assert.Equal([10L, 20L], readout.Readings.OrderBy(r => r.EndPoint, StringComparer.Ordinal).Select(r => r.ConnectedClients));
        Assert.All(readout.Readings, r => Assert.Equal(100, r.MaxClients));
        Assert.Equal(["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"], readout.Nodes.Order(StringComparer.Ordinal));

        // Each node once, over the first multiplexer connected to it; nothing is sent to a disconnected IServer.
        Assert.Equal(["127.0.0.1:7000"], first.Asked);
        Assert.Equal(["127.0.0.1:7001"], second.Asked);
    }

    [Fact]
    public async Task A_node_failing_mid_read_costs_only_its_own_reading_and_is_named()
    {
        var logger = new FakeLogger();
        var cluster = FakeCluster.Of(("127.0.0.1:7000", true, 10), ("127.0.0.1:7001", true, FakeCluster.Fails), ("127.0.0.1:7002", true, 30));
        var reader = new RedisServerCounterReader(() => [cluster.Multiplexer], "cluster", logger);

        var readout = await reader.ReadAsync(CancellationToken.None);

        Assert.Equal(["127.0.0.1:7000", "127.0.0.1:7002"], readout!.Readings.Select(r => r.EndPoint).Order(StringComparer.Ordinal));
        var failed = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 302);
        Assert.Contains("127.0.0.1:7001: RedisConnectionException", failed.Message, StringComparison.Ordinal);

        // With nothing read at all the poll fails, as on a standalone server.
        var alone = FakeCluster.Of(("127.0.0.1:7001", true, FakeCluster.Fails));
        await Assert.ThrowsAsync<RedisConnectionException>(() => new RedisServerCounterReader(() => [alone.Multiplexer], "cluster", logger).ReadAsync(CancellationToken.None));
    }

    /// <summary>Multiplexers over several nodes, each connected or not, answering INFO with maxclients 100.</summary>
    public class FakeCluster : DispatchProxy
    {
        /// <summary>A node's client count that makes its INFO fail as a dropped socket does.</summary>
        public const long Fails = -1;

        private (string EndPoint, bool Connected, long Clients) _node;
        private FakeCluster? _owner;
        private IServer[] _servers = [];

        public IConnectionMultiplexer Multiplexer { get; private set; } = null!;

        public List<string> Asked { get; } = [];

        public static FakeCluster Of(params (string EndPoint, bool Connected, long Clients)[] nodes)
        {
            var multiplexer = Create<IConnectionMultiplexer, FakeCluster>();
            var owner = (FakeCluster)(object)multiplexer;
            owner.Multiplexer = multiplexer;
            owner._servers = nodes.Select(node =>
            {
                var server = Create<IServer, FakeCluster>();
                ((FakeCluster)(object)server)._node = node;
                ((FakeCluster)(object)server)._owner = owner;
                return server;
            }).ToArray();
            return owner;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            switch (targetMethod?.Name)
            {
                case "get_IsConnected":
                    return _owner is null || _node.Connected;
                case "GetServers":
                    return _servers;
                case "get_EndPoint":
                    var colon = _node.EndPoint.LastIndexOf(':');
                    return new IPEndPoint(IPAddress.Parse(_node.EndPoint[..colon]), int.Parse(_node.EndPoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
                case "InfoAsync":
                    var section = (string?)(RedisValue)args![0]!;
                    if (section == "clients")
                    {
                        _owner!.Asked.Add(_node.EndPoint);
                    }

                    if (_node.Clients == Fails)
                    {
                        return Task.FromException<IGrouping<string, KeyValuePair<string, string>>[]>(new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "socket closed", null, CommandStatus.Unknown));
                    }

                    return Task.FromResult((section == "clients"
                            ? new[] { KeyValuePair.Create("connected_clients", _node.Clients.ToString(System.Globalization.CultureInfo.InvariantCulture)), KeyValuePair.Create("maxclients", "100") }
                            : [KeyValuePair.Create("rejected_connections", "0")])
                        .GroupBy(_ => section ?? string.Empty)
                        .ToArray());
                default:
                    throw new NotSupportedException(targetMethod?.Name);
            }
        }
    }

    /// <summary>A connected server whose INFO clients lacks maxclients and whose CONFIG is disabled in the command map.</summary>
    public class FakeServer : DispatchProxy
    {
        public static IConnectionMultiplexer Multiplexer()
        {
            var server = Create<IServer, FakeServer>();
            var multiplexer = Create<IConnectionMultiplexer, FakeServer>();
            ((FakeServer)(object)multiplexer).Server = server;
            return multiplexer;
        }

        public IServer? Server { get; set; }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) => targetMethod?.Name switch
        {
            "get_IsConnected" => true,
            "get_EndPoint" => new IPEndPoint(IPAddress.Loopback, 6379),
            "GetServers" => new[] { Server! },
            "InfoAsync" => Task.FromResult(Info((string?)(RedisValue)args![0]!)),
            "ConfigGetAsync" => Task.FromException<KeyValuePair<string, string>[]>(new RedisCommandException("This operation has been disabled in the command-map and cannot be used: CONFIG")),
            _ => throw new NotSupportedException(targetMethod?.Name),
        };

        private static IGrouping<string, KeyValuePair<string, string>>[] Info(string? section) =>
            (section == "clients"
                ? new[] { KeyValuePair.Create("connected_clients", "64"), KeyValuePair.Create("blocked_clients", "1") }
                : [KeyValuePair.Create("rejected_connections", "0")])
            .GroupBy(_ => section ?? string.Empty)
            .ToArray();
    }
}
