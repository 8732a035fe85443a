using System.Globalization;
using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>A standalone server is a topology of one node: the per-node view says what the pool-wide one says.</summary>
public sealed class StandaloneNodeTests : IAsyncLifetime
{
    private RedisServer _server = null!;

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Statistics_list_the_one_node_with_the_pools_sockets_and_breaker()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "standaloneNode",
            ServiceName = "tests",
            Configuration = _server.ConnectionString,
            MinMultiplexers = 2,
            MaxMultiplexers = 2,
        });
        await pool.ConnectAsync();
        await using (await pool.LeaseAsync())
        {
            var statistics = pool.GetStatistics();

            var node = Assert.Single(statistics.Nodes);
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{_server.Port}"), node.EndPoint);
            Assert.Equal(RedisPoolNodeRole.Primary, node.Role);
            Assert.Equal(statistics.Sockets, node.Sockets);
            Assert.Equal(statistics.MultiplexerSockets, node.MultiplexerSockets);
            Assert.Equal(1, node.LeaseSockets);
            Assert.Equal(statistics.LeaseSockets, node.LeaseSockets);
            Assert.Equal(3, node.Sockets);
            Assert.Equal(statistics.CircuitState, node.CircuitState);
            Assert.Equal(3, (await _server.ClientListAsync()).Count(c => c.Name.Contains(":standaloneNode:", StringComparison.Ordinal)));
        }
    }
}
