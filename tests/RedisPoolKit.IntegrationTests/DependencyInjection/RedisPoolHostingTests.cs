using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using static RedisPoolKit.IntegrationTests.DependencyInjection.PoolHost;

namespace RedisPoolKit.IntegrationTests.DependencyInjection;

[Collection(RedisCollection.Name)]
public sealed class RedisPoolHostingTests(SharedRedisFixture fixture)
{
    private RedisServer Redis => fixture.Server;

    [Fact]
    public async Task Default_and_two_named_pools_are_distinct_pools_with_distinct_budgets()
    {
        var service = UniqueServiceName();
        using var host = Build(services =>
        {
            services.AddRedisPool(o => Configure(o, Redis, service, maxConnections: 2));
            services.AddRedisPool("cache", o => Configure(o, Redis, service, maxConnections: 3));
            services.AddRedisPool("queue", o => Configure(o, Redis, service, maxConnections: 4));
        });
        await host.StartAsync().WaitAsync(Bound);

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
            var statistics = pool.GetStatistics();
            Assert.InRange(statistics.Sockets, 1, statistics.MaxConnections);
        }

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Client_list_shows_each_pools_name()
    {
        var service = UniqueServiceName();
        using var host = Build(services =>
        {
            services.AddRedisPool(o => Configure(o, Redis, service));
            services.AddRedisPool("cache", o => Configure(o, Redis, service));
            services.AddRedisPool("queue", o => Configure(o, Redis, service));
        });
        await host.StartAsync().WaitAsync(Bound);

        // Host start connected every pool, so each already holds its first multiplexer socket.
        var names = await ClientNamesOfAsync(Redis, service);

        foreach (var pool in new[] { "default", "cache", "queue" })
        {
            Assert.Contains(names, n => n.StartsWith($"{service}:{Instance}:{pool}:mux", StringComparison.Ordinal));
        }

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Unkeyed_and_keyed_connection_multiplexers_work_over_their_pools()
    {
        var service = UniqueServiceName();
        using var host = Build(services =>
        {
            services.AddRedisPool(o => Configure(o, Redis, service)).AddConnectionMultiplexer();
            services.AddRedisPool("cache", o => Configure(o, Redis, service)).AddConnectionMultiplexer();
            services.AddSingleton<LegacyRepository>();
            services.AddSingleton<CacheRepository>();
        });
        await host.StartAsync().WaitAsync(Bound);

        var legacy = host.Services.GetRequiredService<LegacyRepository>();
        var cache = host.Services.GetRequiredService<CacheRepository>();

        Assert.Same(host.Services.GetRequiredService<IRedisPool>().Multiplexer, legacy.Redis);
        Assert.Same(host.Services.GetRequiredKeyedService<IRedisPool>("cache").Multiplexer, cache.Redis);
        Assert.NotSame(legacy.Redis, cache.Redis);
        var index = 0;
        foreach (var redis in new[] { legacy.Redis, cache.Redis })
        {
            var key = $"{service}:{index++}";
            Assert.True(await redis.GetDatabase().StringSetAsync(key, "v"));
            Assert.Equal("v", (string?)await redis.GetDatabase().StringGetAsync(key));
        }

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Distributed_cache_runs_over_the_pool_and_disposing_it_leaves_the_pool_working()
    {
        var service = UniqueServiceName();
        using var host = Build(services =>
        {
            services.AddRedisPool("cache", o => Configure(o, Redis, service));
            services.AddStackExchangeRedisCache(cache => cache.InstanceName = $"{service}:");
            services.AddOptions<RedisCacheOptions>()
                .Configure<IServiceProvider>((cache, provider) =>
                    cache.ConnectionMultiplexerFactory = () =>
                        Task.FromResult(provider.GetRequiredKeyedService<IRedisPool>("cache").Multiplexer));
        });
        await host.StartAsync().WaitAsync(Bound);
        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("cache");
        var cache = host.Services.GetRequiredService<IDistributedCache>();

        await cache.SetStringAsync("greeting", "hello");
        Assert.Equal("hello", await cache.GetStringAsync("greeting"));
        Assert.True(await pool.GetDatabase().KeyExistsAsync($"{service}:greeting"));
        Assert.All(await ClientNamesOfAsync(Redis, service), n => Assert.StartsWith($"{service}:{Instance}:cache:", n, StringComparison.Ordinal));

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

        await host.StopAsync().WaitAsync(Bound);
    }

    [Fact]
    public async Task Disposing_the_container_closes_the_sockets_of_the_pools_it_created()
    {
        var service = UniqueServiceName();
        var host = Build(services =>
        {
            services.AddRedisPool(o => Configure(o, Redis, service)).AddConnectionMultiplexer();
            services.AddRedisPool("cache", o => Configure(o, Redis, service));
        });
        await host.StartAsync().WaitAsync(Bound);
        await host.Services.GetRequiredService<IConnectionMultiplexer>().GetDatabase().PingAsync();
        Assert.NotEmpty(await ClientNamesOfAsync(Redis, service));

        host.Dispose();

        await AssertNoSocketsOfAsync(Redis, service);
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
