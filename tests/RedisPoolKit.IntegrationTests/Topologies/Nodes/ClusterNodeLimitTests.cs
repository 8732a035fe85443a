using System.Collections.Concurrent;
using RedisPoolKit.IntegrationTests.Harness;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Nodes;

/// <summary>
/// One slow master in a cluster: its own adaptive in-flight limit falls, the other masters' commands keep completing
/// unhindered, and once it is fast again its limit climbs back.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class ClusterNodeLimitTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    private const int MaxInFlight = 256;
    private const int Floor = 64;

    // Per master: more than half the floor, so a master at its floor sees enough load to grow again.
    private const int CallersPerNode = 40;

    private RedisCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task A_stalled_master_lowers_its_own_limit_while_the_others_keep_serving_and_recovers_after()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "nodeLimit",
            Configuration = Cluster.ConnectionString,
            MaxInFlight = MaxInFlight,
            AdaptiveInFlight = true,
            MaxQueueLength = 8,
            QueueTimeout = TimeSpan.FromSeconds(5),
            MinMultiplexers = 1,
            MaxMultiplexers = 1,
            Leases = { MaxLeases = 0, MinIdle = 0 },
            Monitor = { Enabled = false },
        });
        await pool.ConnectAsync();
        var db = pool.GetDatabase();

        var keys = new Dictionary<string, List<RedisKey>>();
        foreach (var node in Cluster.Nodes)
        {
            keys[NameOf(node)] = [];
        }

        for (var i = 0; keys.Values.Any(k => k.Count < 4); i++)
        {
            var key = $"nodelimit:{i}";
            var owner = keys[NameOf(await Cluster.GetKeyOwnerAsync(key))];
            if (owner.Count < 4)
            {
                owner.Add(key);
                await db.StringSetAsync(key, new byte[100]);
            }
        }

        await Eventually.TrueAsync(() => Limits(pool).Count == Cluster.Nodes.Count, TimeSpan.FromSeconds(15), "every master has a limit of its own");
        Assert.Equal(MaxInFlight, pool.GetStatistics().InFlightLimit);

        var stalled = Cluster.Nodes[1];
        var stalledName = NameOf(stalled);
        var completed = new ConcurrentDictionary<string, long>();
        var failures = new ConcurrentDictionary<string, ConcurrentBag<Exception>>();
        using var stop = new CancellationTokenSource();
        var callers = keys.SelectMany(pair => Enumerable.Range(0, CallersPerNode).Select(i => Task.Run(async () =>
        {
            var nodeKeys = pair.Value;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await db.StringGetAsync(nodeKeys[i % nodeKeys.Count]);
                    completed.AddOrUpdate(pair.Key, 1, static (_, n) => n + 1);
                }
                catch (Exception ex) when (ex is RedisPoolExhaustedException or RedisException)
                {
                    failures.GetOrAdd(pair.Key, static _ => []).Add(ex);
                }
            }
        }))).ToList();

        try
        {
            // Under load, before the stall: every master answers.
            await Eventually.TrueAsync(() => keys.Keys.All(n => completed.GetValueOrDefault(n) > 1000), TimeSpan.FromSeconds(30), "every master serves the load");

            // The stall: the master is paused for 80 ms of every ~100 ms (CLIENT PAUSE), for its clients only.
            using var unstall = new CancellationTokenSource();
            var stall = Task.Run(async () =>
            {
                while (!unstall.IsCancellationRequested)
                {
                    await stalled.ExecuteAsync("CLIENT", "PAUSE", "80", "ALL");
                    await Task.Delay(100);
                }
            });

            int lowest;
            Dictionary<string, long> healthyDuring;
            try
            {
                await Eventually.TrueAsync(() => Limits(pool)[stalledName] == Floor, TimeSpan.FromSeconds(60), "the stalled master's limit falls to its floor");
                lowest = Limits(pool)[stalledName];

                // Meanwhile the others keep completing; measured over a further second of stall.
                var before = Snapshot(completed);
                await Eventually.TrueAsync(
                    () => keys.Keys.Where(n => n != stalledName).All(n => completed.GetValueOrDefault(n) > before.GetValueOrDefault(n) + 500),
                    TimeSpan.FromSeconds(30),
                    "the healthy masters keep completing while one is stalled");
                healthyDuring = keys.Keys.Where(n => n != stalledName).ToDictionary(n => n, n => completed.GetValueOrDefault(n) - before.GetValueOrDefault(n));
                output.WriteLine($"during the stall: limits {Describe(Limits(pool))}; completed by healthy masters over the check: {string.Join(", ", healthyDuring.Select(p => $"{p.Key} {p.Value}"))}; stalled master {completed.GetValueOrDefault(stalledName)} in all");
            }
            finally
            {
                await unstall.CancelAsync();
                await stall;
            }

            // Fast again: its limit climbs back above the floor.
            await Eventually.TrueAsync(() => Limits(pool)[stalledName] > lowest, TimeSpan.FromSeconds(60), "the master's limit climbs back once it is fast again");
            output.WriteLine($"after the stall: limits {Describe(Limits(pool))}");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(callers);
        }

        // No command for a healthy master was refused or failed; the pool's own limit never moved.
        foreach (var node in keys.Keys.Where(n => n != stalledName))
        {
            Assert.True(!failures.TryGetValue(node, out var errors) || errors.IsEmpty, $"commands for {node} failed: {(errors is null ? string.Empty : string.Join(" | ", errors.Take(3).Select(e => e.Message)))}");
        }

        var statistics = pool.GetStatistics();
        Assert.Equal(MaxInFlight, statistics.InFlightLimit);
        Assert.Equal(0, statistics.RejectedQueueFull + statistics.RejectedQueueTimeout);
    }

    private static string NameOf(RedisClusterNode node) => $"127.0.0.1:{node.Port}";

    private static Dictionary<string, int> Limits(RedisPool pool) =>
        pool.GetStatistics().Nodes.Where(n => n.InFlightLimit is not null).ToDictionary(n => n.EndPoint, n => n.InFlightLimit!.Value);

    private static Dictionary<string, long> Snapshot(ConcurrentDictionary<string, long> counts) => counts.ToDictionary(p => p.Key, p => p.Value);

    private static string Describe(Dictionary<string, int> limits) => string.Join(", ", limits.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"));
}
