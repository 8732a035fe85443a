using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// Sentinels that require a password, and an ACL user on them: the pool's sentinel sockets authenticate the way
/// StackExchange.Redis does (<c>sentinelUser</c>/<c>sentinelPassword</c>, else <c>user</c>/<c>password</c>), and a
/// refusal fails the connect naming the option to set.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelAuthTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_pool_authenticates_to_sentinels_and_a_refusal_names_sentinelPassword()
    {
        using var bound = new CancellationTokenSource(Bound);
        await using var set = await RedisSentinelSet.StartAsync(new RedisSentinelSetOptions { SentinelPassword = "s3ntinel", SentinelUser = "poolkit" }, bound.Token);
        var sentinels = string.Join(',', set.SentinelEndPoints.Select(e => $"127.0.0.1:{e.Port}")) + ",serviceName=" + set.ServiceName;

        // The ACL user, as the set's connection string gives it.
        await using (var pool = new RedisPool(new RedisPoolOptions { Name = "sauthuser", Configuration = set.ConnectionString }))
        {
            await pool.ConnectAsync(bound.Token);
            Assert.Equal(3, pool.GetStatistics().SentinelSockets);
            await pool.GetDatabase().StringSetAsync("sauth", "1");
            var client = Assert.Single(await set.Sentinels[0].ClientListAsync(), c => c.Name.Contains(":sauthuser:", StringComparison.Ordinal));
            Assert.Equal("poolkit", client.Fields["user"]);
        }

        // The default user's password, given as 'password' only: StackExchange.Redis uses it for the sentinels too.
        await using (var pool = new RedisPool(new RedisPoolOptions { Name = "sauthpass", Configuration = sentinels + ",password=s3ntinel" }))
        {
            await pool.ConnectAsync(bound.Token);
            Assert.Equal(3, pool.GetStatistics().SentinelSockets);
        }

        foreach (var (configuration, given) in new[] { (sentinels, "none were given"), (sentinels + ",sentinelPassword=wrong", "a password, as the default user"), (sentinels + ",sentinelUser=poolkit,sentinelPassword=wrong", "user 'poolkit'") })
        {
            await using var pool = new RedisPool(new RedisPoolOptions { Name = "sauthno", Configuration = configuration, ConnectTimeout = TimeSpan.FromSeconds(3) });
            var refused = await Assert.ThrowsAsync<RedisPoolException>(() => pool.ConnectAsync(bound.Token));
            output.WriteLine(refused.Message);
            Assert.Contains("refused the pool's credentials", refused.Message, StringComparison.Ordinal);
            Assert.Contains(given, refused.Message, StringComparison.Ordinal);
            Assert.Contains("'sentinelPassword'", refused.Message, StringComparison.Ordinal);
            Assert.Equal(0, pool.GetStatistics().SentinelSockets);
        }
    }
}
