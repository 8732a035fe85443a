using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.DependencyInjection;

public sealed class RedisServerFixture : IAsyncLifetime
{
    public LocalRedisServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await LocalRedisServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public sealed class RedisPoolHostingTests(RedisServerFixture fixture) : IClassFixture<RedisServerFixture>
{
    private const string Instance = "it";

    // Busy-waits on the server for ARGV[1] microseconds: in-flight work the test can see finish.
    private const string SpinScript =
        "local s = redis.call('TIME'); local start = s[1] * 1000000 + s[2]; " +
        "repeat local t = redis.call('TIME') until (t[1] * 1000000 + t[2]) - start >= tonumber(ARGV[1]) return 1";

    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(30);

    private LocalRedisServer Redis => fixture.Server;

    [Fact]
    public async Task Default_and_two_named_pools_are_distinct_pools_with_distinct_budgets()
    {
        var service = UniqueServiceName();
        using var host = BuildHost(services =>
        {
            services.AddRedisPool(o => Configure(o, service, maxConnections: 2));
            services.AddRedisPool("cache", o => Configure(o, service, maxConnections: 3));
            services.AddRedisPool("queue", o => Configure(o, service, maxConnections: 4));
        });
        await host.StartAsync().WaitAsync(s_bound);

        IRedisPool[] pools =
        [
            host.Services.GetRequiredService<IRedisPool>(),
            host.Services.GetRequiredKeyedService<IRedisPool>("cache"),
            host.Services.GetRequiredKeyedService<IRedisPool>("queue"),
        ];

        Assert.Equal(["default", "cache", "queue"], pools.Select(p => p.Name));
        Assert.Equal([2, 3, 4], pools.Select(p => p.GetStatistics().MaxConnections));
        Assert.Equal(3, pools.Distinct(ReferenceEqualityComparer.Instance).Count());
        foreach (var pool in pools)
        {
            var key = $"{service}:{pool.Name}";
            Assert.True(await pool.GetDatabase().StringSetAsync(key, pool.Name));
            Assert.Equal(pool.Name, (string?)await pool.GetDatabase().StringGetAsync(key));
            Assert.InRange(pool.GetStatistics().Sockets, 1, pool.GetStatistics().MaxConnections);
        }

        await host.StopAsync().WaitAsync(s_bound);
    }

    [Fact]
    public async Task Client_list_shows_each_pools_name()
    {
        var service = UniqueServiceName();
        using var host = BuildHost(services =>
        {
            services.AddRedisPool(o => Configure(o, service));
            services.AddRedisPool("cache", o => Configure(o, service));
            services.AddRedisPool("queue", o => Configure(o, service));
        });
        await host.StartAsync().WaitAsync(s_bound);

        // Host start connected every pool, so each already holds its first multiplexer socket.
        var names = await Redis.ClientNamesAsync();

        foreach (var pool in new[] { "default", "cache", "queue" })
        {
            Assert.Contains(names, n => n.StartsWith($"{service}:{Instance}:{pool}:mux", StringComparison.Ordinal));
        }

        await host.StopAsync().WaitAsync(s_bound);
    }

    [Fact]
    public async Task Unkeyed_and_keyed_connection_multiplexers_work_over_their_pools()
    {
        var service = UniqueServiceName();
        using var host = BuildHost(services =>
        {
            services.AddRedisPool(o => Configure(o, service)).AddConnectionMultiplexer();
            services.AddRedisPool("cache", o => Configure(o, service)).AddConnectionMultiplexer();
            services.AddSingleton<LegacyRepository>();
            services.AddSingleton<CacheRepository>();
        });
        await host.StartAsync().WaitAsync(s_bound);

        var legacy = host.Services.GetRequiredService<LegacyRepository>();
        var cache = host.Services.GetRequiredService<CacheRepository>();

        Assert.Same(host.Services.GetRequiredService<IRedisPool>().Multiplexer, legacy.Redis);
        Assert.Same(host.Services.GetRequiredKeyedService<IRedisPool>("cache").Multiplexer, cache.Redis);
        Assert.NotSame(legacy.Redis, cache.Redis);
        foreach (var redis in new[] { legacy.Redis, cache.Redis })
        {
            var key = $"{service}:{redis.GetHashCode()}";
            Assert.True(await redis.GetDatabase().StringSetAsync(key, "v"));
            Assert.Equal("v", (string?)await redis.GetDatabase().StringGetAsync(key));
        }

        await host.StopAsync().WaitAsync(s_bound);
    }

    [Fact]
    public async Task Distributed_cache_runs_over_the_pool_and_disposing_it_leaves_the_pool_working()
    {
        var service = UniqueServiceName();
        using var host = BuildHost(services =>
        {
            services.AddRedisPool("cache", o => Configure(o, service));
            services.AddStackExchangeRedisCache(cache => cache.InstanceName = $"{service}:");
            services.AddOptions<RedisCacheOptions>()
                .Configure<IServiceProvider>((cache, provider) =>
                    cache.ConnectionMultiplexerFactory = () =>
                        Task.FromResult(provider.GetRequiredKeyedService<IRedisPool>("cache").Multiplexer));
        });
        await host.StartAsync().WaitAsync(s_bound);
        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("cache");
        var cache = host.Services.GetRequiredService<IDistributedCache>();

        await cache.SetStringAsync("greeting", "hello");
        Assert.Equal("hello", await cache.GetStringAsync("greeting"));
        Assert.True(await pool.GetDatabase().KeyExistsAsync($"{service}:greeting"));

        // RedisCache closes and disposes the multiplexer it was handed; the pool must shrug that off.
        ((IDisposable)cache).Dispose();

        Assert.True(await pool.GetDatabase().KeyExistsAsync($"{service}:greeting"));
        Assert.True(await pool.Multiplexer.GetDatabase().StringSetAsync($"{service}:after", "still serving"));
        Assert.True(pool.Multiplexer.IsConnected);
        using var second = new RedisCache(Options.Create(new RedisCacheOptions
        {
            InstanceName = $"{service}:",
            ConnectionMultiplexerFactory = () => Task.FromResult(pool.Multiplexer),
        }));
        Assert.Equal("hello", await second.GetStringAsync("greeting"));

        await host.StopAsync().WaitAsync(s_bound);
    }

    [Fact]
    public async Task Host_stop_with_work_in_flight_completes_it_within_the_grace_period_and_leaves_no_pool_sockets()
    {
        var service = UniqueServiceName();
        var grace = TimeSpan.FromSeconds(5);
        using var host = BuildHost(services => services.AddRedisPool("load", o =>
        {
            Configure(o, service);
            o.ShutdownGracePeriod = grace;
        }));
        await host.StartAsync().WaitAsync(s_bound);
        var db = host.Services.GetRequiredKeyedService<IRedisPool>("load").GetDatabase();

        // Eight 200 ms scripts run one after another on the server: ~1.6 s of work in flight at stop.
        var inFlight = Enumerable.Range(0, 8)
            .Select(_ => db.ScriptEvaluateAsync(SpinScript, values: [200_000]))
            .ToArray();
        var stopwatch = Stopwatch.StartNew();
        await host.StopAsync().WaitAsync(s_bound);
        stopwatch.Stop();

        Assert.All(inFlight, t => Assert.True(t.IsCompletedSuccessfully, $"in-flight command ended {t.Status}: {t.Exception?.GetBaseException().Message}"));
        Assert.All(await Task.WhenAll(inFlight), r => Assert.Equal(1, (int)r));
        Assert.True(stopwatch.Elapsed < grace + TimeSpan.FromSeconds(1), $"host stop took {stopwatch.Elapsed}, grace period {grace}");
        await AssertNoSocketsOfAsync(service);
    }

    [Fact]
    public async Task Disposing_the_container_closes_the_sockets_of_the_pools_it_created()
    {
        var service = UniqueServiceName();
        var host = BuildHost(services =>
        {
            services.AddRedisPool(o => Configure(o, service)).AddConnectionMultiplexer();
            services.AddRedisPool("cache", o => Configure(o, service));
        });
        await host.StartAsync().WaitAsync(s_bound);
        Assert.True(await host.Services.GetRequiredService<IConnectionMultiplexer>().GetDatabase().PingAsync() >= TimeSpan.Zero);
        Assert.Contains(await Redis.ClientNamesAsync(), n => n.StartsWith($"{service}:", StringComparison.Ordinal));

        host.Dispose();

        await AssertNoSocketsOfAsync(service);
    }

    [Fact]
    public async Task Host_start_fails_with_the_pools_exception_when_connection_is_required_and_the_server_is_down()
    {
        using var host = BuildHost(services => services.AddRedisPool("cache", o =>
        {
            Configure(o, UniqueServiceName());
            o.Configuration = $"127.0.0.1:{ClosedPort()}";
            o.ConnectTimeout = TimeSpan.FromSeconds(2);
        }));
        var stopwatch = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<RedisException>(() => host.StartAsync().WaitAsync(s_bound));

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2 + 2), $"start failed after {stopwatch.Elapsed}, ConnectTimeout 2 s");
    }

    [Fact]
    public async Task Host_starts_degraded_when_connection_is_not_required_and_the_server_is_down()
    {
        using var host = BuildHost(services => services.AddRedisPool("cache", o =>
        {
            Configure(o, UniqueServiceName());
            o.Configuration = $"127.0.0.1:{ClosedPort()}";
            o.ConnectTimeout = TimeSpan.FromSeconds(2);
            o.RequireConnectionOnStart = false;
        }));

        await host.StartAsync().WaitAsync(s_bound);

        Assert.Equal("cache", host.Services.GetRequiredKeyedService<IRedisPool>("cache").GetStatistics().PoolName);
        await host.StopAsync().WaitAsync(s_bound);
    }

    private void Configure(RedisPoolOptions options, string service, int maxConnections = 4)
    {
        options.Configuration = Redis.ConnectionString;
        options.ServiceName = service;
        options.InstanceId = Instance;
        options.MaxConnections = maxConnections;
    }

    private static IHost BuildHost(Action<IServiceCollection> configure)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        configure(builder.Services);
        return builder.Build();
    }

    private async Task AssertNoSocketsOfAsync(string service)
    {
        // The server notices a closed socket asynchronously: poll with a deadline.
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<string> left;
        do
        {
            left = (await Redis.ClientNamesAsync()).Where(n => n.StartsWith($"{service}:", StringComparison.Ordinal)).ToList();
            if (left.Count == 0)
            {
                return;
            }

            await Task.Delay(50);
        }
        while (deadline.Elapsed < TimeSpan.FromSeconds(5));

        Assert.Fail($"Sockets still on the server 5 s after the pool closed: {string.Join(", ", left)}");
    }

    private static string UniqueServiceName() => "di" + Guid.NewGuid().ToString("N")[..10];

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class LegacyRepository(IConnectionMultiplexer redis)
    {
        public IConnectionMultiplexer Redis { get; } = redis;
    }

    private sealed class CacheRepository([FromKeyedServices("cache")] IConnectionMultiplexer redis)
    {
        public IConnectionMultiplexer Redis { get; } = redis;
    }
}
