using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Harness;

[Collection(FaultCollection.Name)]
public sealed class RedisSentinelSetTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Failover_promotes_the_replica_and_turns_the_old_master_into_its_replica()
    {
        await using var set = await RedisSentinelSet.StartAsync();
        try
        {
            var old = set.Servers[0];
            Assert.Same(old, await set.GetMasterAsync());
            Assert.Equal(string.Join(',', set.Sentinels.Select(s => $"127.0.0.1:{s.Port}")) + ",serviceName=mymaster", set.ConnectionString);
            await using var client = await ConnectionMultiplexer.ConnectAsync(set.ConnectionString);
            await client.GetDatabase().StringSetAsync("before-failover", "1");
            Assert.Equal("1", (string?)await old.Admin.GetDatabase().StringGetAsync("before-failover"));

            var promoted = await set.FailoverAsync();

            Assert.NotSame(old, promoted);
            Assert.Same(promoted, await set.GetMasterAsync());
            foreach (var sentinel in set.Sentinels)
            {
                Assert.Equal(promoted.Port, await sentinel.GetMasterPortAsync(set.ServiceName));
            }

            Assert.Equal("master", (await promoted.InfoAsync("replication"))["role"]);
            Assert.Equal("slave", (await old.InfoAsync("replication"))["role"]);
            Assert.Equal("1", (string?)await promoted.Admin.GetDatabase().StringGetAsync("before-failover"));
            await Eventually.TrueAsync(
                async () =>
                {
                    await client.GetDatabase().StringSetAsync("after-failover", "2");
                    return (string?)await promoted.Admin.GetDatabase().StringGetAsync("after-failover") == "2";
                },
                Deadline,
                "a Sentinel-mode client should write to the promoted master");
        }
        finally
        {
            output.WriteLine(set.LogTails());
        }
    }

    [Fact]
    public async Task Missing_sentinel_binary_fails_naming_how_to_get_one()
    {
        var options = new RedisSentinelSetOptions { SentinelPath = "/nonexistent/redis-sentinel" };

        var failure = await Assert.ThrowsAsync<RedisServerStartException>(() => RedisSentinelSet.StartAsync(options));

        Assert.Equal(RedisServerStartFailure.NotFound, failure.Failure);
        Assert.Contains("RedisSentinelSetOptions.SentinelPath points at '/nonexistent/redis-sentinel'", failure.Message, StringComparison.Ordinal);
        Assert.Contains("redis-sentinel", failure.Message, StringComparison.Ordinal);
    }
}
