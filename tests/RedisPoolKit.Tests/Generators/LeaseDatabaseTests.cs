using StackExchange.Redis;

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
        var lease = new LeaseDatabase(inner, () => false, "lease 1 on 127.0.0.1:6379");

        Assert.Equal("v", (string?)lease.StringGet("k"));
        Assert.True(await lease.StringSetAsync("k", "v", expiry: TimeSpan.FromSeconds(1)));
        Assert.Equal(7, lease.Database);

        Assert.Equal(["StringGet", "StringSetAsync", "get_Database"], recorder.Calls.Select(c => c.Name));
        Assert.Equal((RedisKey)"k", recorder.Calls[0].Args[0]);
        Assert.Equal(CommandFlags.None, recorder.Calls[0].Args[1]);
    }

    [Fact]
    public void Lease_database_throws_ObjectDisposedException_after_disposal_and_sends_nothing()
    {
        var (inner, recorder) = RecordingProxy.Create<IDatabase>();
        var disposed = false;
        var lease = new LeaseDatabase(inner, () => disposed, "lease 1 on 127.0.0.1:6379");
        lease.Ping();

        disposed = true;

        var ex = Assert.Throws<ObjectDisposedException>(() => lease.StringGet("k"));
        Assert.Contains("lease 1 on 127.0.0.1:6379", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => { _ = lease.StringSetAsync("k", "v"); });
        Assert.Throws<ObjectDisposedException>(() => lease.Multiplexer);
        Assert.Throws<ObjectDisposedException>(() => lease.HashScan("h"));
        Assert.Equal(["Ping"], recorder.Calls.Select(c => c.Name));
    }
}
