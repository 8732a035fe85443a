using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RedisPoolKit.IntegrationTests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>ConfigureOptions from DI reaches every socket, and the settings the pool owns win over it.</summary>
[Collection(FaultCollection.Name)]
public sealed class ConfigureOptionsTests(ITestOutputHelper output) : RedisTestBase(output)
{
    [Fact]
    public async Task Code_level_options_from_DI_reach_every_socket_and_the_pool_owned_settings_are_applied_after_them()
    {
        var server = await StartServerAsync();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:Pools:code:Configuration"] = server.ConnectionString,
            ["Redis:Pools:code:ServiceName"] = "tests",
        });
        var calls = 0;
        builder.Services.AddRedisPool("code", builder.Configuration.GetSection("Redis:Pools:code"), redis =>
        {
            calls++;
            redis.DefaultDatabase = 3;                              // kept
            redis.ClientName = "not-the-pools-name";                // the pool's own
            redis.BacklogPolicy = BacklogPolicy.Default;            // the pool's own
            redis.AbortOnConnectFail = false;                       // the pool's own
        });
        using var host = builder.Build();
        await host.StartAsync();
        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("code");

        await pool.GetDatabase().StringSetAsync("configured", "db3");
        await using (var lease = await pool.LeaseAsync())
        {
            Assert.Equal("db3", (string?)await lease.Database.StringGetAsync("configured"));
        }

        Assert.Equal("db3", (string?)await server.Admin.GetDatabase(3).StringGetAsync("configured"));
        Assert.Equal(1, calls);
        var names = (await server.ClientListAsync()).Select(c => c.Name).ToList();
        Assert.DoesNotContain("not-the-pools-name", names);
        Assert.Equal(2, names.Count(n => n.StartsWith("tests:", StringComparison.Ordinal)));
        var configuration = pool.Multiplexer.Configuration;
        Assert.Contains("defaultDatabase=3", configuration, StringComparison.Ordinal);
        Assert.DoesNotContain("abortConnect=False", configuration, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("not-the-pools-name", configuration, StringComparison.Ordinal);
        await host.StopAsync();
    }
}
