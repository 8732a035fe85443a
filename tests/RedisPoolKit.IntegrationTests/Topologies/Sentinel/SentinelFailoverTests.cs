using System.Collections.Concurrent;
using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Topologies.Sentinel;

/// <summary>
/// One real failover per case (a master, a replica, three sentinels): the pool's writers and a plain StackExchange.Redis
/// Sentinel multiplexer write side by side, and every write either was acknowledged and is on the new master afterwards,
/// or was refused by the pool. The plain multiplexer's losses are reported beside the pool's.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class SentinelFailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // With the default QueueTimeout (1 s) a writer waiting out the failover is refused once; with 3 s it waits it out.
    [Theory]
    [InlineData(1, 1000)]
    [InlineData(8, 3000)]
    public async Task Every_acknowledged_write_is_on_the_new_master_and_no_pool_socket_stays_on_the_old_one(int writers, int queueTimeoutMs)
    {
        using var bound = new CancellationTokenSource(Bound);
        await using var set = await RedisSentinelSet.StartAsync(cancellationToken: bound.Token);
        try
        {
            var old = await set.GetMasterAsync();
            var poolName = "failover" + writers;
            await using var pool = new RedisPool(new RedisPoolOptions { Name = poolName, Configuration = set.ConnectionString, QueueTimeout = TimeSpan.FromMilliseconds(queueTimeoutMs), Leases = { MaxLeases = 3 } });
            await pool.ConnectAsync(bound.Token);
            var before = pool.GetStatistics();
            Assert.Equal(3, before.SentinelSockets);
            Assert.Equal($"127.0.0.1:{old.Port}", before.SentinelMaster);
            Assert.Contains(await old.ClientListAsync(), c => IsPool(c, poolName));
            foreach (var sentinel in set.Sentinels)
            {
                Assert.Single(await sentinel.ClientListAsync(), c => IsPool(c, poolName));
            }

            // One lease stays held across the failover, one goes back idle: both sockets are on the old master.
            var held = await pool.LeaseAsync(bound.Token);
            await held.Database.StringSetAsync("held-before", "1");
            await (await pool.LeaseAsync(bound.Token)).DisposeAsync();
            Assert.Equal(1, pool.GetStatistics().LeasesIdle);

            await using var plain = await ConnectionMultiplexer.ConnectAsync(set.ConnectionString);
            var clock = Stopwatch.StartNew();
            await using var observer = await SentinelObserver.StartAsync(set, clock);
            using var stop = new CancellationTokenSource();
            var poolWriters = Enumerable.Range(0, writers).Select(w => WriteAsync(pool.GetDatabase(), $"p{w}:", clock, stop.Token)).ToArray();
            var plainWriter = WriteAsync(plain.GetDatabase(), "plain:", clock, stop.Token);
            await Eventually.TrueAsync(() => Task.FromResult(poolWriters.All(w => w.Acked.Count > 100) && plainWriter.Acked.Count > 100), TimeSpan.FromSeconds(30), "the writers should be writing before the failover");

            var failover = set.FailoverAsync(bound.Token);

            // The pool follows the switch: its master changes, and no socket of it is left on the old master.
            await Eventually.TrueAsync(() => Task.FromResult(pool.GetStatistics().SentinelMaster != before.SentinelMaster), TimeSpan.FromSeconds(20), "the pool should follow the switch");
            var moved = clock.Elapsed;
            // The held lease keeps its socket until it comes back; every other pool socket leaves the old master.
            var left = Array.Empty<string>();
            await Eventually.TrueAsync(
                async () =>
                {
                    left = [.. (await old.ClientListAsync()).Where(c => IsPool(c, poolName)).Select(c => c.Name)];
                    return left is [var only] && only.Contains(":lease", StringComparison.Ordinal);
                },
                TimeSpan.FromSeconds(15),
                $"only the held lease's socket should stay on the old master; left: {string.Join(", ", left)}");
            var oldEmpty = clock.Elapsed;
            var promoted = await set.GetMasterAsync();
            Assert.Equal($"127.0.0.1:{promoted.Port}", pool.GetStatistics().SentinelMaster);

            // The held lease's next command is refused, naming the move; a new lease is on the new master.
            var refused = await Assert.ThrowsAsync<RedisPoolException>(() => held.Database.StringSetAsync("held-after", "1"));
            output.WriteLine("held lease: " + refused.Message);
            Assert.Contains($"away from 127.0.0.1:{old.Port}", refused.Message, StringComparison.Ordinal);
            Assert.Contains("take a new one", refused.Message, StringComparison.Ordinal);
            await held.DisposeAsync();
            await Eventually.TrueAsync(async () => !(await old.ClientListAsync()).Any(c => IsPool(c, poolName)), TimeSpan.FromSeconds(15), "the held lease's socket should close when it comes back");
            await using (var fresh = await pool.LeaseAsync(bound.Token))
            {
                var role = await fresh.Database.ExecuteAsync("ROLE");
                Assert.Equal("master", role[0].ToString());
                await fresh.Database.StringSetAsync("fresh-lease", "1");
                Assert.Equal("1", (string?)await promoted.Admin.GetDatabase().StringGetAsync("fresh-lease"));
            }

            Assert.Contains(await promoted.ClientListAsync(), c => IsPool(c, poolName) && c.Name.Contains(":lease", StringComparison.Ordinal));
            await failover;
            var demoted = clock.Elapsed;

            // Writes after the demotion, then stop.
            var settled = poolWriters.Sum(w => w.Acked.Count);
            await Eventually.TrueAsync(() => Task.FromResult(poolWriters.Sum(w => w.Acked.Count) > settled + 100), TimeSpan.FromSeconds(30), "the pool should write to the new master");
            await stop.CancelAsync();
            await Task.WhenAll(poolWriters.Select(w => w.Task).Append(plainWriter.Task));

            var newMaster = promoted.Admin.GetDatabase();
            var poolLost = 0L;
            foreach (var writer in poolWriters)
            {
                poolLost += await CountMissingAsync(newMaster, writer);
            }

            var plainLost = await CountMissingAsync(newMaster, plainWriter);
            var events = observer.Seen;
            output.WriteLine($"writers {writers}, QueueTimeout {queueTimeoutMs} ms: pool acked {poolWriters.Sum(w => w.Acked.Count)}, lost {poolLost}, rejected {poolWriters.Sum(w => w.Rejected)}, failed {poolWriters.Sum(w => w.Failed)} ({string.Join("; ", poolWriters.SelectMany(w => w.Failures).Distinct().Take(3))})");
            output.WriteLine($"plain multiplexer: acked {plainWriter.Acked.Count}, lost {plainLost}, failed {plainWriter.Failed}");
            output.WriteLine($"pool moved at {moved.TotalSeconds:F2} s, no pool socket on the old master at {oldEmpty.TotalSeconds:F2} s, old master demoted by {demoted.TotalSeconds:F2} s");
            foreach (var (name, at) in events.OrderBy(e => e.Value))
            {
                output.WriteLine($"  {name} at {at.TotalSeconds:F3} s (clock of the test)");
            }

            // The replica is promoted right after Sentinel sends it REPLICAOF NO ONE; +promoted-slave only reports it later.
            var promotingAt = events.GetValueOrDefault("+failover-state-send-slaveof-noone", TimeSpan.MaxValue);
            var switchAt = events.GetValueOrDefault("+switch-master", TimeSpan.MaxValue);
            var ackedInWindow = poolWriters.Sum(w => w.AckTimes.Count(t => t > promotingAt && t < switchAt));
            var plainInWindow = plainWriter.AckTimes.Count(t => t > promotingAt);
            var gaps = poolWriters.Select(w => LongestGap(w.AckTimes)).Max();
            var firstAfter = poolWriters.Select(w => w.AckTimes.FirstOrDefault(t => t > switchAt, TimeSpan.MaxValue)).Min();
            output.WriteLine($"pool acks between +failover-state-send-slaveof-noone and +switch-master: {ackedInWindow} (plain multiplexer after it: {plainInWindow}); longest gap between acks of one writer: {gaps.TotalMilliseconds:F0} ms; first pool ack {(firstAfter - switchAt).TotalMilliseconds:F0} ms after +switch-master");
            output.WriteLine($"pool moved {(moved - switchAt).TotalMilliseconds:F0} ms after +switch-master (as observed by the test); no pool socket on the old master {(oldEmpty - switchAt).TotalMilliseconds:F0} ms after it");

            Assert.Equal(0, poolLost);
            Assert.True(poolLost <= plainLost);
            Assert.True(poolWriters.Sum(w => w.Acked.Count) > 0);
        }
        finally
        {
            output.WriteLine(set.LogTails(40));
        }
    }

    private static bool IsPool(RedisClientInfo client, string poolName) => client.Name.Contains($":{poolName}:", StringComparison.Ordinal);

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

    private static Writer WriteAsync(IDatabase database, string prefix, Stopwatch clock, CancellationToken stop)
    {
        var writer = new Writer(prefix);
        writer.Task = Task.Run(async () =>
        {
            for (var i = 0L; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    await database.StringSetAsync(prefix + i, i);
                    writer.Acked.Add(i);
                    writer.AckTimes.Add(clock.Elapsed);
                }
                catch (RedisPoolExhaustedException)
                {
                    writer.Rejected++;
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException or RedisPoolException)
                {
                    writer.Failed++;
                    writer.Failures.Add(ex.GetType().Name + ": " + ex.Message[..Math.Min(160, ex.Message.Length)]);
                }
            }
        });
        return writer;
    }

    private sealed class Writer(string prefix)
    {
        public string Prefix { get; } = prefix;

        public List<long> Acked { get; } = [];

        public List<TimeSpan> AckTimes { get; } = [];

        public List<string> Failures { get; } = [];

        public int Rejected { get; set; }

        public int Failed { get; set; }

        public Task Task { get; set; } = Task.CompletedTask;
    }

    /// <summary>Subscribes to every sentinel's failover events and keeps the first time each was seen.</summary>
    private sealed class SentinelObserver : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<string, TimeSpan> _seen = new();
        private readonly List<ConnectionMultiplexer> _connections = [];

        public IReadOnlyDictionary<string, TimeSpan> Seen => _seen;

        public static async Task<SentinelObserver> StartAsync(RedisSentinelSet set, Stopwatch clock)
        {
            var observer = new SentinelObserver();
            foreach (var sentinel in set.Sentinels)
            {
                var config = new ConfigurationOptions { CommandMap = CommandMap.Sentinel, EndPoints = { sentinel.EndPoint } };
                var connection = await ConnectionMultiplexer.ConnectAsync(config);
                observer._connections.Add(connection);
                await connection.GetSubscriber().SubscribeAsync(RedisChannel.Pattern("*"), (channel, _) => observer._seen.TryAdd(channel.ToString(), clock.Elapsed));
            }

            return observer;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var connection in _connections)
            {
                await connection.DisposeAsync();
            }
        }
    }
}
