using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// A transaction and a batch made on a held lease before a failover and executed after the pool moved: the lease's
/// socket is still on the old master, which would acknowledge them and lose them when Sentinel demotes it, so they
/// are refused without being sent, like the lease's own next command.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelLeaseTransactionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_transaction_made_on_a_held_lease_before_a_failover_is_refused_after_it_and_not_sent_to_the_old_master()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var set = await RedisSentinelSet.StartAsync(cancellationToken: bound.Token);
        try
        {
            var old = await set.GetMasterAsync();
            await using var pool = new RedisPool(new RedisPoolOptions { Name = "leasetxfailover", Configuration = set.ConnectionString, QueueTimeout = TimeSpan.FromSeconds(3) });
            await pool.ConnectAsync(bound.Token);
            var before = pool.GetStatistics().SentinelMaster;

            var held = await pool.LeaseAsync(bound.Token);
            var transaction = held.Database.CreateTransaction();
            transaction.AddCondition(Condition.KeyNotExists("guard"));
            _ = transaction.StringSetAsync("tx-after-move", "1");
            var batch = held.Database.CreateBatch();
            _ = batch.StringSetAsync("batch-after-move", "1");

            var failover = set.FailoverAsync(bound.Token);
            await Eventually.TrueAsync(() => Task.FromResult(pool.GetStatistics().SentinelMaster != before), TimeSpan.FromSeconds(20), "the pool should follow the switch");

            // The old master is not demoted yet (Sentinel takes ~10 s): a transaction sent now would be acknowledged there.
            var refused = await Assert.ThrowsAsync<RedisPoolException>(() => transaction.ExecuteAsync());
            output.WriteLine("transaction: " + refused.Message);
            Assert.Contains($"away from 127.0.0.1:{old.Port}", refused.Message, StringComparison.Ordinal);
            Assert.Throws<RedisPoolException>(() => batch.Execute());
            var oldDb = old.Admin.GetDatabase();
            Assert.False(await oldDb.KeyExistsAsync("tx-after-move"));
            Assert.False(await oldDb.KeyExistsAsync("batch-after-move"));
            await held.DisposeAsync();
            await failover;
        }
        catch
        {
            output.WriteLine(set.LogTails());
            throw;
        }
    }
}
