using System.Collections.Concurrent;
using System.Globalization;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Pool;

/// <summary>
/// Subscriptions made through the drop-in facade's subscriber outlive the multiplexer they were made on: the pool
/// moves them when it replaces that multiplexer, and StackExchange.Redis restores them when its socket drops.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class DropInSubscriberTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData(1)] // no other member: the subscriptions wait for the replacement the set connects
    [InlineData(2)] // the next oldest member takes them at once
    public async Task Handler_subscriptions_survive_their_multiplexer_being_replaced(int minMultiplexers)
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var prefix = Guid.NewGuid().ToString("N");
        var channel = RedisChannel.Literal($"{prefix}:orders");
        var literal = new Inbox();
        var pattern = new Inbox();
        await subscriber.SubscribeAsync(channel, literal.Add);
        await subscriber.SubscribeAsync(RedisChannel.Pattern($"{prefix}:*"), pattern.Add);

        var replaced = await ReplaceBoundMemberAsync(pool, minMultiplexers);
        await ProbeAsync(subscriber, channel, literal, pattern);

        var expected = Enumerable.Range(0, 100).Select(i => $"m{i}").ToList();
        foreach (var message in expected)
        {
            // One socket holds both subscriptions, and only one: a duplicate would make this 3 or 4.
            Assert.Equal(2, await subscriber.PublishAsync(channel, message));
        }

        // StackExchange.Redis runs handlers concurrently: every message arrives once, not necessarily in order.
        await Eventually.TrueAsync(() => literal.Received().Count == expected.Count && pattern.Received().Count == expected.Count, Timeout, "both handlers receive every message published after the replacement");
        Assert.Equal(expected.Order(), literal.Received().Order());
        Assert.Equal(expected.Order(), pattern.Received().Order());
        Assert.Equal(1, await NumSubAsync(server, channel));
        Assert.Equal(1, await NumPatAsync(server));

        // Only the application's channel: the pool's sockets carry no subscription of StackExchange.Redis's own.
        var holder = (await server.ClientListAsync()).Single(c => c.Fields["psub"] == "1");
        Assert.NotEqual(replaced, holder.Name);
        Assert.Equal("1", holder.Fields["sub"]);
    }

    [Fact]
    public async Task Subscribing_while_no_multiplexer_is_left_connects_one_and_brings_the_waiting_subscriptions()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var prefix = Guid.NewGuid().ToString("N");
        var waiting = RedisChannel.Literal($"{prefix}:orders");
        var later = RedisChannel.Literal($"{prefix}:carts");
        var waitingInbox = new Inbox();
        var laterInbox = new Inbox();
        await subscriber.SubscribeAsync(waiting, waitingInbox.Add);

        var bound = pool.Multiplexers.Entries[0];
        await bound.Connection.DisposeAsync();
        await Eventually.TrueAsync(() => pool.Multiplexers.Count == 0, Timeout, "the set retires the closed member before it connects a replacement");
        await subscriber.SubscribeAsync(later, laterInbox.Add);

        Assert.DoesNotContain(bound, pool.Multiplexers.Entries);
        await ProbeAsync(subscriber, waiting, waitingInbox);
        Assert.Equal(1, await subscriber.PublishAsync(later, "after"));
        await Eventually.TrueAsync(() => laterInbox.Received().Contains("after"), Timeout, "the subscription made while no multiplexer was left receives");
    }

    [Fact]
    public async Task Unsubscribe_after_a_replacement_stops_delivery()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var prefix = Guid.NewGuid().ToString("N");
        var channel = RedisChannel.Literal($"{prefix}:orders");
        var patternChannel = RedisChannel.Pattern($"{prefix}:*");
        var literal = new Inbox();
        var pattern = new Inbox();
        await subscriber.SubscribeAsync(channel, literal.Add);
        await subscriber.SubscribeAsync(patternChannel, pattern.Add);

        await ReplaceBoundMemberAsync(pool, 1);
        await ProbeAsync(subscriber, channel, literal, pattern);
        await subscriber.UnsubscribeAsync(channel, literal.Add);
        subscriber.Unsubscribe(patternChannel);

        await Eventually.TrueAsync(async () => await NumSubAsync(server, channel) == 0 && await NumPatAsync(server) == 0, Timeout, "the server drops both subscriptions");
        Assert.Equal(0, await subscriber.PublishAsync(channel, "nobody listens"));
        Assert.Equal(0, ((PooledMultiplexer)pool.Multiplexer).Subscriptions.Count);
    }

    [Fact]
    public async Task A_message_queue_completes_when_its_multiplexer_is_replaced_and_a_new_one_receives()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var channel = RedisChannel.Literal($"{Guid.NewGuid():N}:orders");
        var queue = await subscriber.SubscribeAsync(channel);
        await subscriber.PublishAsync(channel, "before");
        Assert.Equal("before", (string?)(await queue.ReadAsync().AsTask().WaitAsync(Timeout)).Message);

        await ReplaceBoundMemberAsync(pool, 1);

        // Its reader ends instead of waiting forever on a closed connection.
        await queue.Completion.WaitAsync(Timeout);
        var again = await subscriber.SubscribeAsync(channel);
        Assert.Equal(1, await subscriber.PublishAsync(channel, "after"));
        Assert.Equal("after", (string?)(await again.ReadAsync().AsTask().WaitAsync(Timeout)).Message);
    }

    [Fact]
    public async Task Handler_subscriptions_survive_a_killed_socket()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var channel = RedisChannel.Literal($"{Guid.NewGuid():N}:orders");
        var inbox = new Inbox();
        await subscriber.SubscribeAsync(channel, inbox.Add);
        var bound = pool.Multiplexers.Entries[0];

        var victim = (await server.ClientListAsync()).Single(c => c.Name == bound.Connection.ClientName);
        await server.Admin.GetServer(server.EndPoint).ExecuteAsync("CLIENT", "KILL", "ID", victim.Id.ToString(CultureInfo.InvariantCulture));
        await ProbeAsync(subscriber, channel, inbox);

        Assert.Same(bound, pool.Multiplexers.Entries[0]);
        Assert.Equal(1, await subscriber.PublishAsync(channel, "after"));
        await Eventually.TrueAsync(() => inbox.Received().Contains("after"), Timeout, "the handler receives after StackExchange.Redis reconnects");
    }

    [Fact]
    public async Task Message_queues_are_not_recorded_so_one_unsubscribed_with_unread_messages_is_not_kept()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var subscriber = pool.Multiplexer.GetSubscriber();
        var channel = RedisChannel.Literal($"{Guid.NewGuid():N}:orders");
        var queue = await subscriber.SubscribeAsync(channel);
        await subscriber.PublishAsync(channel, "read");
        await subscriber.PublishAsync(channel, "unread");
        Assert.Equal("read", (string?)(await queue.ReadAsync().AsTask().WaitAsync(Timeout)).Message);

        await queue.UnsubscribeAsync();

        // Its Completion waits for the unread message; nothing in the pool waits for it.
        Assert.False(queue.Completion.IsCompleted);
        Assert.Equal(0, ((PooledMultiplexer)pool.Multiplexer).Subscriptions.Count);
    }

    [Fact]
    public async Task Disposing_the_pool_completes_message_queues()
    {
        var server = await StartServerAsync();
        var pool = await StartPoolAsync(server, minMultiplexers: 1);
        var queue = await pool.Multiplexer.GetSubscriber().SubscribeAsync(RedisChannel.Literal($"{Guid.NewGuid():N}:orders"));

        var subscriber = pool.Multiplexer.GetSubscriber();

        await pool.DisposeAsync();

        await queue.Completion.WaitAsync(Timeout);
        Assert.Equal(0, ((PooledMultiplexer)subscriber.Multiplexer).Subscriptions.Count);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => subscriber.SubscribeAsync(RedisChannel.Literal("late"), (_, _) => { }));
    }

    private async Task<RedisPool> StartPoolAsync(RedisServer server, int minMultiplexers)
    {
        var pool = new RedisPool(new RedisPoolOptions
        {
            Name = "pubsub",
            Configuration = server.ConnectionString,
            ServiceName = "tests",
            MinMultiplexers = minMultiplexers,
            MaxMultiplexers = Math.Max(2, minMultiplexers),
        });
        await pool.ConnectAsync();
        return pool;
    }

    /// <summary>
    /// Closes the bound member's connection: what a member that failed for good looks like to the set, whose
    /// maintenance then retires it and connects a replacement. Returns the closed socket's client name.
    /// </summary>
    private async Task<string> ReplaceBoundMemberAsync(RedisPool pool, int minMultiplexers)
    {
        var facade = (PooledMultiplexer)pool.Multiplexer;
        var bound = pool.Multiplexers.Entries[0];
        Assert.Same(bound.Multiplexer, facade.Subscriptions.Member);
        await bound.Connection.DisposeAsync();
        await Eventually.TrueAsync(
            () => !pool.Multiplexers.Entries.Contains(bound) && pool.Multiplexers.Count >= minMultiplexers,
            Timeout,
            "the set retires the closed member and keeps MinMultiplexers");
        Output.WriteLine($"replaced {bound.Connection.ClientName}; members now {string.Join(", ", pool.Multiplexers.Entries.Select(e => e.Connection.ClientName))}");
        return bound.Connection.ClientName;
    }

    /// <summary>Publishes probes until every inbox has one: the subscriptions are live again.</summary>
    private static Task ProbeAsync(ISubscriber subscriber, RedisChannel channel, params Inbox[] inboxes)
    {
        var probes = 0;
        return Eventually.TrueAsync(
            async () =>
            {
                await subscriber.PublishAsync(channel, $"probe{probes++}");
                return inboxes.All(i => i.Messages.Any(m => m.StartsWith("probe", StringComparison.Ordinal)));
            },
            Timeout,
            "the subscriptions receive again");
    }

    private static async Task<long> NumSubAsync(RedisServer server, RedisChannel channel)
    {
        var reply = (RedisResult[])(await server.Admin.GetServer(server.EndPoint).ExecuteAsync("PUBSUB", "NUMSUB", (string)channel!))!;
        return (long)reply[1];
    }

    private static async Task<long> NumPatAsync(RedisServer server)
        => (long)await server.Admin.GetServer(server.EndPoint).ExecuteAsync("PUBSUB", "NUMPAT");

    /// <summary>Every message a handler received, in order.</summary>
    private sealed class Inbox
    {
        private readonly ConcurrentQueue<string> _messages = new();

        public IReadOnlyList<string> Messages => [.. _messages];

        public void Add(RedisChannel channel, RedisValue message) => _messages.Enqueue((string?)message ?? string.Empty);

        /// <summary>The messages received, probes left out.</summary>
        public List<string> Received() => [.. Messages.Where(m => !m.StartsWith("probe", StringComparison.Ordinal))];
    }
}
