using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// The budget under Sentinel, checked against what the servers say (<c>CLIENT LIST</c>): each sentinel socket counts on its
/// sentinel and shows in the per-node statistics, the pool-wide figures are the master's, and after a failover under
/// load they are the new master's while the old one holds nothing of the pool.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelBudgetTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Sentinel_sockets_count_on_their_sentinels_and_the_figures_follow_the_master_through_a_failover()
    {
        using var bound = new CancellationTokenSource(Bound);
        await using var set = await RedisSentinelSet.StartAsync(cancellationToken: bound.Token);
        try
        {
            var old = await set.GetMasterAsync();
            const string poolName = "sbudget";
            var pool = new RedisPool(new RedisPoolOptions
            {
                Name = poolName,
                Configuration = set.ConnectionString,
                QueueTimeout = TimeSpan.FromSeconds(3),
                Leases = { MaxLeases = 2 },
                Monitor = { Enabled = true, PollInterval = TimeSpan.FromMilliseconds(200) },
            });
            await using (pool)
            {
                await pool.ConnectAsync(bound.Token);
                await (await pool.LeaseAsync(bound.Token)).DisposeAsync();
                await AssertMatchesServersAsync(pool, set, old, poolName);

                // A failover under load: the figures move to the new master, the old one keeps nothing of the pool.
                using var stop = new CancellationTokenSource();
                var database = pool.GetDatabase();
                var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
                {
                    for (var i = 0; !stop.IsCancellationRequested; i++)
                    {
                        try
                        {
                            await database.StringSetAsync($"w{w}:{i}", i);
                        }
                        catch (Exception ex) when (ex is RedisException or TimeoutException or RedisPoolException)
                        {
                            // Refusals while the failover is held are the admission rules at work; this test counts sockets.
                        }
                    }
                })).ToArray();
                var promoted = await set.FailoverAsync(bound.Token);
                await Eventually.TrueAsync(() => Task.FromResult(pool.GetStatistics().SentinelMaster == $"127.0.0.1:{promoted.Port}"), TimeSpan.FromSeconds(20), "the pool should follow the switch");
                await Eventually.TrueAsync(async () => !(await old.ClientListAsync()).Any(c => IsPool(c, poolName)), TimeSpan.FromSeconds(15), "no pool socket should stay on the old master");
                await (await pool.LeaseAsync(bound.Token)).DisposeAsync();
                await Eventually.TrueAsync(
                    () => Task.FromResult(pool.GetStatistics().LastServerUtilization?.EndPoint == $"127.0.0.1:{promoted.Port}"),
                    TimeSpan.FromSeconds(10),
                    "the monitor should read the new master");
                await stop.CancelAsync();
                await Task.WhenAll(writers);

                var after = await AssertMatchesServersAsync(pool, set, promoted, poolName);
                Assert.DoesNotContain(after.Nodes, n => n.EndPoint == $"127.0.0.1:{old.Port}" && n.Sockets > 0);
                Assert.Equal($"127.0.0.1:{promoted.Port}", pool.Budget.DefaultNode);
            }

            // Disposal gives every slot back, the sentinels' included, and closes the sockets.
            Assert.All(pool.Budget.Nodes, n => Assert.Equal(0, n.Used));
            foreach (var sentinel in set.Sentinels)
            {
                await Eventually.TrueAsync(async () => !(await sentinel.ClientListAsync()).Any(c => IsPool(c, poolName)), TimeSpan.FromSeconds(15), $"the pool's socket on {sentinel} should close");
            }
        }
        finally
        {
            output.WriteLine(set.LogTails(20));
        }
    }

    /// <summary>Every node's figures against <c>CLIENT LIST</c> on that node, once they settle; the pool-wide figures are the master's.</summary>
    private async Task<RedisPoolStatistics> AssertMatchesServersAsync(RedisPool pool, RedisSentinelSet set, RedisServer master, string poolName)
    {
        var masterText = $"127.0.0.1:{master.Port}";
        RedisPoolStatistics statistics = pool.GetStatistics();
        var onMaster = 0;
        await Eventually.TrueAsync(
            async () =>
            {
                statistics = pool.GetStatistics();
                onMaster = (await master.ClientListAsync()).Count(c => IsPool(c, poolName));
                return statistics.Nodes.FirstOrDefault(n => n.EndPoint == masterText)?.Sockets == onMaster;
            },
            TimeSpan.FromSeconds(15),
            $"the master's node figures should match its CLIENT LIST ({onMaster} pool clients)");
        output.WriteLine(string.Join(Environment.NewLine, statistics.Nodes));

        var masterNode = Assert.Single(statistics.Nodes, n => n.EndPoint == masterText);
        Assert.Equal(RedisPoolNodeRole.Primary, masterNode.Role);
        Assert.True(masterNode.MultiplexerSockets >= 1, masterNode.ToString());
        Assert.Equal(masterNode.Sockets, statistics.Sockets);
        Assert.Equal(masterNode.MultiplexerSockets, statistics.MultiplexerSockets);
        Assert.Equal(masterNode.LeaseSockets, statistics.LeaseSockets);
        Assert.Equal(masterText, masterNode.Utilization?.EndPoint ?? masterText);
        Assert.Equal(set.Sentinels.Count, statistics.SentinelSockets);
        foreach (var sentinel in set.Sentinels)
        {
            var node = Assert.Single(statistics.Nodes, n => n.EndPoint == $"127.0.0.1:{sentinel.Port}");
            Assert.Equal(RedisPoolNodeRole.Sentinel, node.Role);
            Assert.Equal(1, node.Sockets);
            Assert.Null(node.Utilization);
            Assert.Single(await sentinel.ClientListAsync(), c => IsPool(c, poolName));
        }

        return statistics;
    }

    private static bool IsPool(RedisClientInfo client, string poolName) => client.Name.Contains($":{poolName}:", StringComparison.Ordinal);
}
