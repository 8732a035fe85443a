using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Leases;

/// <summary>
/// A batch or transaction made on <see cref="RedisLease.Database"/> is sent when it is executed, not when it is made:
/// executed after its lease went back to the pool, it must not go out on a socket another caller now holds.
/// </summary>
public sealed class LeaseTransactionTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task A_transaction_or_batch_executed_after_its_lease_was_disposed_is_not_sent()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(new RedisPoolOptions { Name = "leasetx", Configuration = server.ConnectionString, Leases = { MaxLeases = 1 } });
        await pool.ConnectAsync();

        var lease = await pool.LeaseAsync();
        var transaction = lease.Database.CreateTransaction();
        transaction.AddCondition(Condition.KeyNotExists("guard-late"));
        _ = transaction.StringSetAsync("tx-late", "1");
        var batch = lease.Database.CreateBatch();
        _ = batch.StringSetAsync("batch-late", "1");
        await lease.DisposeAsync();

        // MaxLeases 1: the next caller holds the very socket the first lease had.
        await using var next = await pool.LeaseAsync();
        var refused = await Assert.ThrowsAsync<ObjectDisposedException>(() => transaction.ExecuteAsync());
        Output.WriteLine(refused.Message);
        Assert.Throws<ObjectDisposedException>(() => transaction.Execute(CommandFlags.None));
        Assert.Throws<ObjectDisposedException>(() => batch.Execute());

        var admin = server.Admin.GetDatabase();
        Assert.False(await admin.KeyExistsAsync("tx-late"));
        Assert.False(await admin.KeyExistsAsync("batch-late"));
        await next.Database.StringSetAsync("next", "1");
        Assert.Equal("1", (string?)await admin.StringGetAsync("next"));
    }

    [Fact]
    public async Task A_transaction_and_a_batch_on_a_held_lease_run_on_its_socket()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(new RedisPoolOptions { Name = "leasetxok", Configuration = server.ConnectionString, Leases = { MaxLeases = 1 } });
        await pool.ConnectAsync();

        await using var lease = await pool.LeaseAsync();
        var transaction = lease.Database.CreateTransaction();
        transaction.AddCondition(Condition.KeyNotExists("guard"));
        var set = transaction.StringSetAsync("tx", "1");
        Assert.True(await transaction.ExecuteAsync());
        Assert.True(await set);
        var batch = lease.Database.CreateBatch();
        var incr = batch.StringIncrementAsync("counter");
        batch.Execute();
        Assert.Equal(1, await incr);
        Assert.Equal("1", (string?)await server.Admin.GetDatabase().StringGetAsync("tx"));
    }
}
