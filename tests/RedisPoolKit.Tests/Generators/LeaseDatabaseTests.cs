using Microsoft.Extensions.Time.Testing;
using RedisPoolKit.Tests.Leases;
using StackExchange.Redis;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Generators;

public class LeaseDatabaseTests
{
    [Fact]
    public async Task Lease_database_forwards_every_kind_of_member_before_disposal()
    {
        var (inner, recorder) = RecordingProxy.Create<IDatabase>();
        recorder.Results["StringGet"] = (RedisValue)"v";
        recorder.Results["StringSetAsync"] = Task.FromResult(true);
        recorder.Results["get_Database"] = 7;
        await using var pool = CreatePool(new FakeTimeProvider(), new FakeConnector());
        using var lease = await pool.AcquireAsync();
        lease.Socket().Database = inner;
        var database = lease.Database;

        Assert.Equal("v", (string?)database.StringGet("k"));
        Assert.True(await database.StringSetAsync("k", "v", expiry: TimeSpan.FromSeconds(1)));
        Assert.Equal(7, database.Database);

        Assert.Equal(["StringGet", "StringSetAsync", "get_Database"], recorder.Calls.Select(c => c.Name));
        Assert.Equal((RedisKey)"k", recorder.Calls[0].Args[0]);
        Assert.Equal(CommandFlags.None, recorder.Calls[0].Args[1]);
    }

    [Fact]
    public async Task Lease_database_throws_ObjectDisposedException_after_disposal_and_sends_nothing()
    {
        var (inner, recorder) = RecordingProxy.Create<IDatabase>();
        await using var pool = CreatePool(new FakeTimeProvider(), new FakeConnector());
        var lease = await pool.AcquireAsync();
        lease.Socket().Database = inner;
        var database = lease.Database;
        database.Ping();

        lease.Dispose();

        var ex = Assert.Throws<ObjectDisposedException>(() => database.StringGet("k"));
        Assert.Contains($"lease {lease.Id} (svc:inst:test:lease0)", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => { _ = database.StringSetAsync("k", "v"); });
        Assert.Throws<ObjectDisposedException>(() => database.Multiplexer);
        Assert.Throws<ObjectDisposedException>(() => database.HashScan("h"));
        Assert.Equal(["Ping"], recorder.Calls.Select(c => c.Name));
    }
}
