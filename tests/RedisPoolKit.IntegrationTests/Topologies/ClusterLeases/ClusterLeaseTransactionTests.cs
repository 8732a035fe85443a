using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.ClusterLeases;

/// <summary>
/// A batch or transaction made on a cluster lease's database and executed after the lease was disposed must not go
/// out on the socket the next caller holds.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterLeaseTransactionTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task A_transaction_or_batch_executed_after_its_cluster_lease_was_disposed_is_not_sent()
    {
        var cluster = fixture.Cluster;
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "cltx" + Guid.NewGuid().ToString("N")[..8],
            ServiceName = "tests",
            Configuration = cluster.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Leases = { MaxLeases = 1 },
        });
        await pool.ConnectAsync();
        const string key = "{cltx}:late";

        var lease = await pool.LeaseAsync(key, CancellationToken.None);
        var transaction = lease.Database.CreateTransaction();
        _ = transaction.StringSetAsync(key, "tx");
        var batch = lease.Database.CreateBatch();
        _ = batch.StringSetAsync("{cltx}:batch", "batch");
        await lease.DisposeAsync();

        // MaxLeases 1 per master: the next lease on that master holds the very socket the first one had.
        await using var next = await pool.LeaseAsync(key, CancellationToken.None);
        var refused = await Assert.ThrowsAsync<ObjectDisposedException>(() => transaction.ExecuteAsync());
        output.WriteLine(refused.Message);
        Assert.Throws<ObjectDisposedException>(() => batch.Execute());

        var owner = await cluster.GetKeyOwnerAsync(key);
        Assert.Equal(0L, (long)await owner.ExecuteAsync("EXISTS", key, "{cltx}:batch"));
        await next.Database.StringSetAsync(key, "next");
        Assert.Equal("next", (string?)await owner.ExecuteAsync("GET", key));
    }
}
