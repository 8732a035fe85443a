using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace RedisPoolKit.Tests.DependencyInjection;

public class RedisPoolServiceNameTests
{
    private static HostApplicationBuilder Host(string applicationName) =>
        Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = applicationName, DisableDefaults = true });

    private static RedisPoolOptions Options(IHost host, string pool) =>
        host.Services.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get(pool);

    [Fact]
    public void Every_pool_that_sets_no_service_name_takes_the_hosts_application_name()
    {
        var builder = Host("order-service");
        builder.Services.AddRedisPool(o => o.Configuration = "127.0.0.1:6390");
        builder.Services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        builder.Services.AddRedisPool("queue", new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Configuration"] = "127.0.0.1:6390" })
            .Build());
        using var host = builder.Build();

        Assert.Equal("order-service", Options(host, "default").ServiceName);
        Assert.Equal("order-service", Options(host, "cache").ServiceName);
        Assert.Equal("order-service", Options(host, "queue").ServiceName);
    }

    [Fact]
    public void A_service_name_set_in_code_or_configuration_wins_over_the_application_name()
    {
        var builder = Host("order-service");
        builder.Services.AddRedisPool("cache", o =>
        {
            o.Configuration = "127.0.0.1:6390";
            o.ServiceName = "cart";
        });
        builder.Services.AddRedisPool("queue", new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Configuration"] = "127.0.0.1:6390", ["ServiceName"] = "notifications" })
            .Build());
        using var host = builder.Build();

        Assert.Equal("cart", Options(host, "cache").ServiceName);
        Assert.Equal("notifications", Options(host, "queue").ServiceName);
    }

    [Fact]
    public void A_service_name_set_for_all_pools_before_registration_wins_over_the_application_name()
    {
        var builder = Host("order-service");
        builder.Services.ConfigureAll<RedisPoolOptions>(o => o.ServiceName = "orders");
        builder.Services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        using var host = builder.Build();

        Assert.Equal("orders", Options(host, "cache").ServiceName);
    }

    [Fact]
    public void An_application_name_a_client_name_cannot_carry_is_made_into_one()
    {
        var builder = Host("Order Service:v2");
        builder.Services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        using var host = builder.Build();

        Assert.Equal("Order-Service-v2", Options(host, "cache").ServiceName);
    }

    [Fact]
    public void Without_a_host_the_entry_assemblys_name_stays()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o => o.Configuration = "127.0.0.1:6390");
        using var provider = services.BuildServiceProvider();

        Assert.Equal(new RedisPoolOptions().ServiceName, provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get("cache").ServiceName);
    }
}
