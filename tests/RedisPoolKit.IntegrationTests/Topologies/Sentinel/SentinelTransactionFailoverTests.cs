using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// Transactions (MULTI, SET, INCR, EXEC; one writer with a WATCH condition, one executing synchronously through the
/// drop-in multiplexer) and batches through the pool during a real failover: every one the
/// pool acknowledged is on the new master afterwards, and each writer's counter counts at least its acknowledged
/// transactions. A plain StackExchange.Redis Sentinel multiplexer runs the same transactions beside it for contrast.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelTransactionFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Every_acknowledged_transaction_and_batch_is_on_the_new_master()
    {
        using var bound = new CancellationTokenSource(Bound);
        await using var set = await RedisSentinelSet.StartAsync(cancellationToken: bound.Token);
        try
        {
            var clock = Stopwatch.StartNew();
            await using var pool = new RedisPool(new RedisPoolOptions { Name = "txfailover", Configuration = set.ConnectionString, QueueTimeout = TimeSpan.FromSeconds(3) });
            await pool.ConnectAsync(bound.Token);
            await using var plain = await ConnectionMultiplexer.ConnectAsync(set.ConnectionString);
            using var stop = new CancellationTokenSource();
            var writers = new List<Writer>();
            writers.Add(Run(new Writer("tx:", Kind.Transaction), pool.GetDatabase(), clock, stop.Token));
            writers.Add(Run(new Writer("txwatch:", Kind.ConditionalTransaction), pool.GetDatabase(), clock, stop.Token));
            writers.Add(Run(new Writer("txsync:", Kind.SyncTransaction), pool.Multiplexer.GetDatabase(), clock, stop.Token));

            for (var w = 0; w < 2; w++)
            {
                writers.Add(Run(new Writer($"batch{w}:", Kind.Batch), pool.GetDatabase(), clock, stop.Token));
            }

            var plainWriter = Run(new Writer("plaintx:", Kind.Transaction), plain.GetDatabase(), clock, stop.Token);
            await Eventually.TrueAsync(() => Task.FromResult(writers.Append(plainWriter).All(w => w.Acked.Count > 50)), TimeSpan.FromSeconds(10), "the writers should be writing before the failover");

            var promoted = await set.FailoverAsync(bound.Token);
            var switchedAt = clock.Elapsed;

            // Some more after the old master is a replica, then stop.
            var settled = writers.Sum(w => w.Acked.Count);
            await Eventually.TrueAsync(() => Task.FromResult(writers.Sum(w => w.Acked.Count) > settled + 100), TimeSpan.FromSeconds(10), "the pool should write to the new master");
            await stop.CancelAsync();
            await Task.WhenAll(writers.Select(w => w.Task).Append(plainWriter.Task));

            var newMaster = promoted.Admin.GetDatabase();
            var poolLost = 0L;
            foreach (var writer in writers)
            {
                var lost = await CountMissingAsync(newMaster, writer);
                var counter = (long)await newMaster.StringGetAsync(writer.Prefix + "counter");
                output.WriteLine($"{writer.Prefix} acked {writer.Acked.Count}, lost {lost}, counter {counter}, not sent (refused) {writer.Refused}, failed {writer.Failed} ({string.Join("; ", writer.Failures.Distinct().Take(3))})");
                poolLost += lost;
                Assert.True(counter >= writer.Acked.Count, $"{writer.Prefix}: the counter ({counter}) lost increments of acknowledged writes ({writer.Acked.Count})");
            }

            var plainLost = await CountMissingAsync(newMaster, plainWriter);
            output.WriteLine($"plain multiplexer transactions: acked {plainWriter.Acked.Count}, lost {plainLost}, counter {(long)await newMaster.StringGetAsync(plainWriter.Prefix + "counter")}, failed {plainWriter.Failed}");
            output.WriteLine($"failover completed at {switchedAt.TotalSeconds:F2} s; longest gap between acks of one pool writer: {writers.Max(w => LongestGap(w.AckTimes)).TotalMilliseconds:F0} ms");

            Assert.Equal(0, poolLost);
            Assert.All(writers, w => Assert.True(w.Acked.Count > 0));
            Assert.True(poolLost <= plainLost);
        }
        finally
        {
            output.WriteLine(set.LogTails(20));
        }
    }

    private static TimeSpan LongestGap(List<TimeSpan> times)
    {
        var longest = TimeSpan.Zero;
        for (var i = 1; i < times.Count; i++)
        {
            longest = times[i] - times[i - 1] > longest ? times[i] - times[i - 1] : longest;
        }

        return longest;
    }

    private static async Task<long> CountMissingAsync(IDatabase database, Writer writer)
    {
        var missing = 0L;
        foreach (var chunk in writer.Acked.Chunk(2000))
        {
            var keys = chunk.Select(i => (RedisKey)(writer.Prefix + i)).ToArray();
            missing += keys.Length - await database.KeyExistsAsync(keys);
        }

        return missing;
    }

    private static Writer Run(Writer writer, IDatabase database, Stopwatch clock, CancellationToken stop)
    {
        writer.Task = Task.Run(async () =>
        {
            var counter = (RedisKey)(writer.Prefix + "counter");
            for (var i = 0L; !stop.IsCancellationRequested; i++)
            {
                var key = (RedisKey)(writer.Prefix + i);
                try
                {
                    bool acked;
                    if (writer.Kind is Kind.Transaction or Kind.ConditionalTransaction or Kind.SyncTransaction)
                    {
                        var transaction = database.CreateTransaction();
                        if (writer.Kind == Kind.ConditionalTransaction)
                        {
                            transaction.AddCondition(Condition.KeyNotExists(key));
                        }

                        var set = transaction.StringSetAsync(key, i);
                        var increment = transaction.StringIncrementAsync(counter);
                        var committed = writer.Kind == Kind.SyncTransaction ? transaction.Execute() : await transaction.ExecuteAsync();
                        acked = committed && await set && await increment > 0;
                    }
                    else
                    {
                        var batch = database.CreateBatch();
                        var set = batch.StringSetAsync(key, i);
                        var increment = batch.StringIncrementAsync(counter);
                        batch.Execute();
                        acked = await set && await increment > 0;
                    }

                    if (acked)
                    {
                        writer.Acked.Add(i);
                        writer.AckTimes.Add(clock.Elapsed);
                    }
                }
                catch (RedisPoolException ex) when (ex.Message.Contains("did not send", StringComparison.Ordinal))
                {
                    writer.Refused++;
                    writer.Failures.Add(ex.Message[..Math.Min(200, ex.Message.Length)]);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException or RedisPoolException or TaskCanceledException)
                {
                    writer.Failed++;
                    writer.Failures.Add(ex.GetType().Name + ": " + ex.Message[..Math.Min(160, ex.Message.Length)]);
                }
            }
        });
        return writer;
    }

    private enum Kind
    {
        Transaction,
        ConditionalTransaction,
        SyncTransaction,
        Batch,
    }

    private sealed class Writer(string prefix, Kind kind)
    {
        public string Prefix { get; } = prefix;

        public Kind Kind { get; } = kind;

        public List<long> Acked { get; } = [];

        public List<TimeSpan> AckTimes { get; } = [];

        public List<string> Failures { get; } = [];

        public int Refused { get; set; }

        public int Failed { get; set; }

        public Task Task { get; set; } = Task.CompletedTask;
    }
}
