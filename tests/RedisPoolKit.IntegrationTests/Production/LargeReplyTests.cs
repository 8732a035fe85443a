using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using StackExchange.Redis.Configuration;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>
/// The pool's one socket per multiplexer must stay an ordinary client for the server: a socket that carries a
/// subscription falls under <c>client-output-buffer-limit pubsub</c> (32 MB hard by default), which would close it
/// under a large reply and fail every command in flight on it.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class LargeReplyTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private const int Large = 64 << 20;
    private const int SharedSocketWarning = 500;

    [Fact]
    public async Task A_64_MB_reply_on_the_shared_socket_arrives_and_disturbs_no_other_command()
    {
        var server = await StartServerAsync();
        await using var pool = await StartPoolAsync(server, new CapturingLoggerProvider());
        var db = pool.GetDatabase();
        var key = $"{Guid.NewGuid():N}:large";
        var value = new byte[Large];
        value[0] = 1;
        value[^1] = 2;

        Assert.True(await db.StringSetAsync(key, value));
        await db.StringSetAsync(key + ":small", "beside");
        var large = db.StringGetAsync(key);
        var small = db.StringGetAsync(key + ":small");

        var read = (byte[]?)await large;
        Assert.NotNull(read);
        Assert.Equal(Large, read.Length);
        Assert.Equal(2, read[^1]);
        Assert.Equal("beside", (string?)await small);

        // One socket, and an ordinary client for the server: no subscription, no pub/sub flag.
        var mux = Assert.Single(await server.ClientListAsync(), c => c.Name.StartsWith("tests:", StringComparison.Ordinal));
        Assert.Equal("0", mux.Fields["sub"]);
        Assert.DoesNotContain('P', mux.Flags);
        Assert.Equal(1, pool.GetStatistics().Sockets);
    }

    [Fact]
    public async Task Subscribing_on_the_shared_socket_says_once_that_the_pubsub_output_limit_now_applies()
    {
        var server = await StartServerAsync();
        var logs = new CapturingLoggerProvider();
        await using var pool = await StartPoolAsync(server, logs);
        var subscriber = pool.Multiplexer.GetSubscriber();
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == SharedSocketWarning);

        await subscriber.SubscribeAsync(RedisChannel.Literal("orders"), (_, _) => { });
        await subscriber.SubscribeAsync(RedisChannel.Literal("carts"), (_, _) => { });
        await (await subscriber.SubscribeAsync(RedisChannel.Literal("audit"))).UnsubscribeAsync();

        var warning = Assert.Single(logs.Lines, l => l.EventId.Id == SharedSocketWarning);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("client-output-buffer-limit pubsub", warning.Text, StringComparison.Ordinal);
        Assert.Contains("SharedSubscriptionConnection", warning.Text, StringComparison.Ordinal);
        var mux = Assert.Single(await server.ClientListAsync(), c => c.Name.StartsWith("tests:", StringComparison.Ordinal));
        Assert.Contains('P', mux.Flags);
    }

    [Fact]
    public async Task Without_a_shared_subscription_connection_nothing_is_said_and_large_replies_still_arrive()
    {
        var server = await StartServerAsync();
        var logs = new CapturingLoggerProvider();
        await using var pool = await StartPoolAsync(server, logs, shared: false);
        await pool.Multiplexer.GetSubscriber().SubscribeAsync(RedisChannel.Literal("orders"), (_, _) => { });
        var db = pool.GetDatabase();
        var key = $"{Guid.NewGuid():N}:large";

        await db.StringSetAsync(key, new byte[Large]);

        Assert.Equal(Large, ((byte[]?)await db.StringGetAsync(key))!.Length);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == SharedSocketWarning);
        Assert.Equal(2, pool.GetStatistics().Sockets);
    }

    [Fact]
    public async Task On_an_Azure_Cache_endpoint_StackExchange_Redis_subscribes_nothing_on_the_pools_sockets()
    {
        // ConfigurationOptions.Parse picks this provider for *.redis.cache.windows.net; its AfterConnectAsync
        // subscribes the AzureRedisEvents channel on every connect, which would make every pool socket (multiplexer
        // and lease) a pub/sub client and close it under a 64 MB reply, without a word from the pool.
        var server = await StartServerAsync();
        var logs = new CapturingLoggerProvider();
        await using var pool = await StartPoolAsync(server, logs, configure: o => o.Defaults = new AzureOptionsProvider());
        var db = pool.GetDatabase();
        var key = $"{Guid.NewGuid():N}:large";
        await db.StringSetAsync(key, new byte[Large]);
        await using var lease = await pool.LeaseAsync();

        Assert.Equal(Large, ((byte[]?)await db.StringGetAsync(key))!.Length);
        Assert.Equal(Large, ((byte[]?)await lease.Database.StringGetAsync(key))!.Length);
        var sockets = (await server.ClientListAsync()).Where(c => c.Name.StartsWith("tests:", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, sockets.Count);
        Assert.All(sockets, c => Assert.Equal("0", c.Fields["sub"]));
        Assert.All(sockets, c => Assert.DoesNotContain('P', c.Flags));
    }

    private static async Task<RedisPool> StartPoolAsync(RedisServer server, CapturingLoggerProvider logs, bool shared = true, Action<ConfigurationOptions>? configure = null)
    {
        var pool = new RedisPool(
            new RedisPoolOptions
            {
                Name = "large",
                Configuration = server.ConnectionString + ",syncTimeout=30000,asyncTimeout=30000",
                ServiceName = "tests",
                MaxMultiplexers = 1,
                SharedSubscriptionConnection = shared,
                ConfigureOptions = configure,
                Monitor = { Enabled = false },
            },
            new CapturingLoggerFactory(logs));
        await pool.ConnectAsync();
        return pool;
    }
}
