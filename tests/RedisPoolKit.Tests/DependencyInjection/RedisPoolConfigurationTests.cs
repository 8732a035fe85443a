using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace RedisPoolKit.Tests.DependencyInjection;

public class RedisPoolConfigurationTests
{
    private const string AppSettings = """
        {
          "Redis": {
            "Pools": {
              "cache": {
                "Configuration": "127.0.0.1:6390,password=secret",
                "ServiceName": "order-service",
                "InstanceId": "pod-7",
                "MaxConnections": 6,
                "MinMultiplexers": 2,
                "MaxMultiplexers": 3,
                "MaxInFlight": 2048,
                "MaxQueueLength": 512,
                "QueueTimeout": "00:00:00.250",
                "ConnectTimeout": "00:00:03",
                "ShutdownGracePeriod": "00:00:07",
                "RequireConnectionOnStart": false,
                "SharedSubscriptionConnection": false,
                "Leases": {
                  "MaxLeases": 1,
                  "MinIdle": 1,
                  "AcquireTimeout": "00:00:02",
                  "MaxWaiters": 16,
                  "IdleTimeout": "00:10:00",
                  "MaxLifetime": "01:00:00",
                  "ValidateAfterIdle": "00:00:45",
                  "LeakDetectionThreshold": "00:00:20",
                  "CommandTimeout": "00:02:00"
                },
                "Breaker": {
                  "BreakDuration": "00:00:02",
                  "MaxBreakDuration": "00:00:30",
                  "TripOnConnectFailures": false,
                  "ConnectFailureThreshold": 5
                },
                "Monitor": {
                  "Enabled": false,
                  "PollInterval": "00:00:05",
                  "WarningUtilization": 0.7,
                  "CriticalUtilization": 0.9
                }
              },
              "queue": {
                "Configuration": "127.0.0.1:6391",
                "MaxConnections": 12
              }
            }
          }
        }
        """;

    [Fact]
    public void Every_option_binds_from_an_appsettings_section_nested_and_TimeSpan_included()
    {
        using var provider = BuildProvider(AppSettings);

        var o = provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get("cache");

        Assert.Equal("cache", o.Name);
        Assert.Equal("127.0.0.1:6390,password=secret", o.Configuration);
        Assert.Equal("order-service", o.ServiceName);
        Assert.Equal("pod-7", o.InstanceId);
        Assert.Equal(6, o.MaxConnections);
        Assert.Equal(2, o.MinMultiplexers);
        Assert.Equal(3, o.MaxMultiplexers);
        Assert.Equal(2048, o.MaxInFlight);
        Assert.Equal(512, o.MaxQueueLength);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.QueueTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), o.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), o.ShutdownGracePeriod);
        Assert.False(o.RequireConnectionOnStart);
        Assert.False(o.SharedSubscriptionConnection);

        Assert.Equal(1, o.Leases.MaxLeases);
        Assert.Equal(1, o.Leases.MinIdle);
        Assert.Equal(TimeSpan.FromSeconds(2), o.Leases.AcquireTimeout);
        Assert.Equal(16, o.Leases.MaxWaiters);
        Assert.Equal(TimeSpan.FromMinutes(10), o.Leases.IdleTimeout);
        Assert.Equal(TimeSpan.FromHours(1), o.Leases.MaxLifetime);
        Assert.Equal(TimeSpan.FromSeconds(45), o.Leases.ValidateAfterIdle);
        Assert.Equal(TimeSpan.FromSeconds(20), o.Leases.LeakDetectionThreshold);
        Assert.Equal(TimeSpan.FromMinutes(2), o.Leases.CommandTimeout);

        Assert.Equal(TimeSpan.FromSeconds(2), o.Breaker.BreakDuration);
        Assert.Equal(TimeSpan.FromSeconds(30), o.Breaker.MaxBreakDuration);
        Assert.False(o.Breaker.TripOnConnectFailures);
        Assert.Equal(5, o.Breaker.ConnectFailureThreshold);

        Assert.False(o.Monitor.Enabled);
        Assert.Equal(TimeSpan.FromSeconds(5), o.Monitor.PollInterval);
        Assert.Equal(0.7, o.Monitor.WarningUtilization);
        Assert.Equal(0.9, o.Monitor.CriticalUtilization);
    }

    [Fact]
    public void Options_left_out_of_the_section_keep_their_defaults()
    {
        using var provider = BuildProvider(AppSettings);

        var queue = provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get("queue");

        Assert.Equal("queue", queue.Name);
        Assert.Equal(12, queue.MaxConnections);
        Assert.Equal(new RedisPoolOptions().QueueTimeout, queue.QueueTimeout);
        Assert.Equal(new RedisPoolLeaseOptions().MaxLeases, queue.Leases.MaxLeases);
        Assert.Null(queue.Leases.LeakDetectionThreshold);
        Assert.Equal(new RedisPoolMonitorOptions().WarningUtilization, queue.Monitor.WarningUtilization);
    }

    [Fact]
    public async Task Invalid_value_fails_host_start_naming_the_option_and_value()
    {
        using var host = BuildHost(new Dictionary<string, string?>
        {
            ["Redis:cache:Configuration"] = "127.0.0.1:6390",
            ["Redis:cache:MaxConnections"] = "-1",
            ["Redis:queue:Configuration"] = "127.0.0.1:6391",
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("MaxConnections ('-1')", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'cache'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_invalid_option_of_every_pool_is_reported_in_one_start_failure()
    {
        using var host = BuildHost(new Dictionary<string, string?>
        {
            ["Redis:cache:Configuration"] = "127.0.0.1:6390",
            ["Redis:cache:MaxConnections"] = "0",
            ["Redis:cache:Leases:AcquireTimeout"] = "00:00:00",
            ["Redis:queue:MaxConnections"] = "4",
        });

        var ex = await Assert.ThrowsAsync<AggregateException>(() => host.StartAsync());

        Assert.All(ex.InnerExceptions, inner => Assert.IsType<OptionsValidationException>(inner));
        var messages = string.Join(" | ", ex.InnerExceptions.Select(inner => inner.Message));
        Assert.Contains("Redis pool 'cache': MaxConnections ('0')", messages, StringComparison.Ordinal);
        Assert.Contains("Redis pool 'cache': Leases.AcquireTimeout", messages, StringComparison.Ordinal);
        Assert.Contains("Redis pool 'queue': Configuration is required", messages, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Misspelt_setting_fails_host_start_naming_it()
    {
        using var host = BuildHost(new Dictionary<string, string?>
        {
            ["Redis:cache:Configuration"] = "127.0.0.1:6390",
            ["Redis:cache:MaxConection"] = "4",
            ["Redis:queue:Configuration"] = "127.0.0.1:6391",
        });

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains("MaxConection", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mistyped_section_path_is_named_in_the_validation_failure()
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(AppSettings))).Build();
        var services = new ServiceCollection();
        services.AddRedisPool("cache", configuration.GetSection("Redis:Pool:cache"));
        using var provider = services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get("cache"));

        Assert.Contains("section 'Redis:Pool:cache' passed to AddRedisPool is missing or empty", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Configuration is required", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectionStrings:cache", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Name_in_configuration_that_differs_from_the_key_fails_host_start()
    {
        using var host = BuildHost(new Dictionary<string, string?>
        {
            ["Redis:cache:Configuration"] = "127.0.0.1:6390",
            ["Redis:cache:Name"] = "other",
            ["Redis:queue:Configuration"] = "127.0.0.1:6391",
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Name ('other') must equal the pool's registration name ('cache')", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolving_a_pool_with_invalid_options_outside_a_host_throws_naming_the_option()
    {
        var services = new ServiceCollection();
        services.AddRedisPool("cache", o =>
        {
            o.Configuration = "127.0.0.1:6390";
            o.MaxConnections = -1;
        });
        using var provider = services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredKeyedService<IRedisPool>("cache"));

        Assert.Contains("MaxConnections ('-1')", ex.Message, StringComparison.Ordinal);
    }

    private static ServiceProvider BuildProvider(string json)
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        var services = new ServiceCollection();
        services.AddRedisPool("cache", configuration.GetSection("Redis:Pools:cache"));
        services.AddRedisPool("queue", configuration.GetSection("Redis:Pools:queue"));
        return services.BuildServiceProvider();
    }

    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddRedisPool("cache", builder.Configuration.GetSection("Redis:cache"));
        builder.Services.AddRedisPool("queue", builder.Configuration.GetSection("Redis:queue"));
        return builder.Build();
    }
}
