using System.Net;
using System.Net.Sockets;
using RedisPoolKit.IntegrationTests.Infrastructure;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

[Collection(FaultCollection.Name)]
public sealed class SentinelStartTests
{
    [Fact]
    public async Task No_sentinel_answering_fails_the_connect_naming_the_sentinels_and_the_service()
    {
        var port = FreePort();
        await using var pool = new RedisPool(new RedisPoolOptions { Configuration = $"127.0.0.1:{port},serviceName=orders", ConnectTimeout = TimeSpan.FromSeconds(2) });

        var failure = await Assert.ThrowsAsync<RedisPoolException>(() => pool.ConnectAsync());

        Assert.Contains("could not learn the master of 'orders'", failure.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.GetStatistics().SentinelSockets);
        Assert.Equal(0, pool.GetStatistics().Sockets);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
