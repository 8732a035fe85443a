using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.DependencyInjection;

public class RedisPoolRegistrationTests
{
    [Fact]
    public void Default_and_named_pools_resolve_to_distinct_pools_named_by_their_keys()
    {
        var services = new ServiceCollection();
        services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390");
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        services.AddRedisPool("queue", o => o.Configuration = "127.0.0.1:6390");
        using var provider = services.BuildServiceProvider();

        var unkeyed = provider.GetRequiredService<IRedisPool>();
        var cache = provider.GetRequiredKeyedService<IRedisPool>("cache");
        var queue = provider.GetRequiredKeyedService<IRedisPool>("queue");

        Assert.Equal("default", unkeyed.Name);
        Assert.Equal("cache", cache.Name);
        Assert.Equal("queue", queue.Name);
        Assert.Equal(3, new HashSet<IRedisPool>([unkeyed, cache, queue], ReferenceEqualityComparer.Instance).Count);
        Assert.Same(unkeyed, provider.GetRequiredKeyedService<IRedisPool>("default"));
        Assert.Same(cache, provider.GetRequiredKeyedService<IRedisPool>("cache"));
    }

    [Fact]
    public void Keyed_pool_is_injected_through_FromKeyedServices()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        services.AddRedisPool("queue", o => o.Configuration = "127.0.0.1:6390");
        services.AddSingleton<NeedsCachePool>();
        using var provider = services.BuildServiceProvider();

        var consumer = provider.GetRequiredService<NeedsCachePool>();

        Assert.Equal("cache", consumer.Pool.Name);
    }

    [Fact]
    public void Named_pools_register_no_unkeyed_pool()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        using var provider = services.BuildServiceProvider();

        Assert.Null(provider.GetService<IRedisPool>());
    }

    [Fact]
    public void Each_pool_gets_its_own_budget()
    {
        var services = new ServiceCollection();
        services.AddRedisPool(o => { o.Configuration = "127.0.0.1:6390"; o.MaxConnections = 3; });
        services.AddRedisPool("cache", o => { o.Configuration = "127.0.0.1:6390"; o.MaxConnections = 5; });
        using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>();

        Assert.Equal(3, monitor.Get("default").MaxConnections);
        Assert.Equal(5, monitor.Get("cache").MaxConnections);
    }

    [Fact]
    public async Task Pool_logs_through_the_containers_logger_factory()
    {
        var logs = new FakeLogCollector();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(new FakeLoggerProvider(logs)));
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        await using var provider = services.BuildServiceProvider();

        // Disposing a pool that never connected does no I/O and logs that it is disposed.
        await provider.GetRequiredKeyedService<IRedisPool>("cache").DisposeAsync();

        Assert.Contains(logs.GetSnapshot(), r => r.Category?.StartsWith("RedisPoolKit", StringComparison.Ordinal) == true && r.Message.Contains("'cache'", StringComparison.Ordinal));
    }

    [Fact]
    public void Each_pool_gets_one_hosted_service()
    {
        var services = new ServiceCollection();
        services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390");
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        using var provider = services.BuildServiceProvider();

        var hosted = provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<RedisPoolHostedService>().Select(s => s.PoolName);

        Assert.Equal(["default", "cache"], hosted);
    }

    [Fact]
    public void Registering_the_same_name_twice_fails_naming_it()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");

        var ex = Assert.Throws<InvalidOperationException>(() => services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6391"));

        Assert.Contains("'cache' is already registered", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Registering_the_default_pool_twice_fails_naming_it()
    {
        var services = new ServiceCollection();
        services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390");

        var ex = Assert.Throws<InvalidOperationException>(() => services.AddRedisPool("default", o => o.Configuration = "127.0.0.1:6391"));

        Assert.Contains("'default' is already registered", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("my cache")]
    [InlineData("a:b")]
    public void Name_that_cannot_be_part_of_a_client_name_fails_at_registration(string name)
    {
        var ex = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddRedisPool(name, o => o.Configuration = "127.0.0.1:6390"));

        Assert.Contains($"'{name}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Connection_multiplexer_is_registered_keyed_for_named_pools_and_unkeyed_for_the_default_pool()
    {
        var services = new ServiceCollection();
        services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390").AddConnectionMultiplexer();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390").AddConnectionMultiplexer().AddConnectionMultiplexer();

        var multiplexers = services.Where(d => d.ServiceType == typeof(IConnectionMultiplexer)).ToList();

        Assert.Equal(3, multiplexers.Count);
        Assert.Single(multiplexers, d => !d.IsKeyedService);
        Assert.Single(multiplexers, d => d.IsKeyedService && Equals(d.ServiceKey, "default"));
        Assert.Single(multiplexers, d => d.IsKeyedService && Equals(d.ServiceKey, "cache"));
    }

    [Fact]
    public void Drop_in_multiplexer_refuses_to_sit_beside_another_unkeyed_multiplexer()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConnectionMultiplexer>(_ => throw new InvalidOperationException("never built"));
        var builder = services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390");

        var ex = Assert.Throws<InvalidOperationException>(() => builder.AddConnectionMultiplexer());

        Assert.Contains("IConnectionMultiplexer is already registered", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Health_check_is_registered_with_its_name_failure_status_and_tags()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390").AddHealthCheck(failureStatus: HealthStatus.Degraded, tags: ["ready"]);
        services.AddRedisPool("queue", o => o.Configuration = "127.0.0.1:6390").AddHealthCheck("queue-redis");
        using var provider = services.BuildServiceProvider();

        var registrations = provider.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations;

        var cache = Assert.Single(registrations, r => r.Name == "redispool-cache");
        Assert.Equal(HealthStatus.Degraded, cache.FailureStatus);
        Assert.Contains("ready", cache.Tags);
        var queue = Assert.Single(registrations, r => r.Name == "queue-redis");
        Assert.Equal(HealthStatus.Unhealthy, queue.FailureStatus);
        Assert.IsAssignableFrom<IHealthCheck>(cache.Factory(provider));
    }

    private sealed class NeedsCachePool([FromKeyedServices("cache")] IRedisPool pool)
    {
        public IRedisPool Pool { get; } = pool;
    }
}
