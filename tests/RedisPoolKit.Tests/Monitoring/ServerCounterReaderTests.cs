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
        var reader = new RedisServerCounterReader(() => FakeServer.Multiplexer(), "managed", logger, maxClients: 256);

        var counters = await reader.ReadAsync(CancellationToken.None);

        Assert.NotNull(counters);
        Assert.Equal(256, counters.Value.MaxClients);
        Assert.Equal(64.0 / 256, counters.Value.Utilization);
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 503);
    }

    [Fact]
    public async Task Without_maxclients_from_anywhere_counts_are_read_without_utilization_and_that_is_said_once()
    {
        var logger = new FakeLogger();
        var reader = new RedisServerCounterReader(() => FakeServer.Multiplexer(), "managed", logger);

        for (var i = 0; i < 3; i++)
        {
            var counters = await reader.ReadAsync(CancellationToken.None);
            Assert.Equal(64, counters!.Value.ConnectedClients);
            Assert.Null(counters.Value.Utilization);
        }

        var said = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 503);
        Assert.Contains("Monitor.MaxClients", said.Message, StringComparison.Ordinal);
        Assert.Null(reader.Unavailable);
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
