using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.IntegrationTests.Production;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// A failover that starts and is aborted: the replica refuses the promotion (its SLAVEOF is renamed), so Sentinel gives
/// up after the failover-timeout with <c>-failover-abort-slave-timeout</c>. The pool holds from the start, then
/// releases the hold and resumes on the old master, which kept every acknowledged write.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelAbortedFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task An_aborted_failover_releases_the_hold_and_commands_resume_on_the_old_master()
    {
        using var bound = new CancellationTokenSource(Bound);
        var options = new RedisSentinelSetOptions();
        options.Arguments.Add("--rename-command");
        options.Arguments.Add("SLAVEOF");
        options.Arguments.Add("slaveof-refused");
        await using var set = await RedisSentinelSet.StartAsync(options, bound.Token);
        try
        {
            var old = await set.GetMasterAsync();
            var logs = new CapturingLoggerProvider();
            await using var pool = new RedisPool(new RedisPoolOptions { Name = "sabort", Configuration = set.ConnectionString }, new CapturingLoggerFactory(logs));
            await pool.ConnectAsync(bound.Token);
            var database = pool.GetDatabase();
            var acked = new List<long>();
            var refused = 0;
            using var stop = new CancellationTokenSource();
            var writer = Task.Run(async () =>
            {
                for (var i = 0L; !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        await database.StringSetAsync("abort:" + i, i);
                        lock (acked)
                        {
                            acked.Add(i);
                        }
                    }
                    catch (RedisPoolExhaustedException)
                    {
                        refused++;
                    }
                }
            });
            await Eventually.TrueAsync(() => Task.FromResult(Count(acked) > 100), TimeSpan.FromSeconds(10), "the writer should be writing before the failover");

            var clock = Stopwatch.StartNew();
            await set.Sentinels[0].ExecuteAsync("SENTINEL", "FAILOVER", set.ServiceName);
            await Eventually.TrueAsync(() => Task.FromResult(logs.Lines.Any(l => l.EventId.Id == 701)), TimeSpan.FromSeconds(5), "the pool should hold when the failover starts");
            var heldAt = clock.Elapsed;
            await Eventually.TrueAsync(() => Task.FromResult(logs.Lines.Any(l => l.EventId.Id == 703)), TimeSpan.FromSeconds(20), "the pool should resume when the failover is aborted");
            var resumedAt = clock.Elapsed;
            var resumed = logs.Lines.First(l => l.EventId.Id == 703).Text;
            output.WriteLine($"held at {heldAt.TotalSeconds:F2} s, resumed at {resumedAt.TotalSeconds:F2} s: {resumed}");

            var before = Count(acked);
            await Eventually.TrueAsync(() => Task.FromResult(Count(acked) > before + 100), TimeSpan.FromSeconds(10), "commands should resume on the old master");
            await stop.CancelAsync();
            await writer;

            Assert.Contains($"resumed commands on 127.0.0.1:{old.Port}", resumed, StringComparison.Ordinal);

            // Sentinel's abort comes ~0.3 s after its failover-timeout and normally ends the hold; the pool's own timer,
            // a second later, is the fallback on a machine too busy for that.
            Assert.True(
                resumed.Contains("aborted its failover (-failover-abort-slave-timeout)", StringComparison.Ordinal) || resumed.Contains("no switch within the failover-timeout", StringComparison.Ordinal),
                resumed);
            Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == 702);
            Assert.Equal($"127.0.0.1:{old.Port}", pool.GetStatistics().SentinelMaster);
            Assert.Equal(old.Port, (await set.GetMasterAsync()).Port);
            Assert.Equal("master", (await old.InfoAsync("replication"))["role"]);

            var keys = acked.Select(i => (RedisKey)("abort:" + i)).ToArray();
            var missing = 0L;
            foreach (var chunk in keys.Chunk(2000))
            {
                missing += chunk.Length - await old.Admin.GetDatabase().KeyExistsAsync(chunk);
            }

            output.WriteLine($"acked {keys.Length}, missing {missing}, refused while held {refused}");
            Assert.Equal(0, missing);
        }
        finally
        {
            output.WriteLine(set.LogTails(15));
        }
    }

    private static int Count(List<long> acked)
    {
        lock (acked)
        {
            return acked.Count;
        }
    }
}
