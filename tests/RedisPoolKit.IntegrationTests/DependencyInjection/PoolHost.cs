using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.DependencyInjection;

/// <summary>Hosts and client-name helpers shared by the DI tests.</summary>
internal static class PoolHost
{
    public const string Instance = "it";

    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static IHost Build(Action<IServiceCollection> configure)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        configure(builder.Services);
        return builder.Build();
    }

    public static void Configure(RedisPoolOptions options, RedisServer server, string service, int maxConnections = 4)
    {
        options.Configuration = server.ConnectionString;
        options.ServiceName = service;
        options.InstanceId = Instance;
        options.MaxConnections = maxConnections;
    }

    /// <summary>A service name no other test uses, so <c>CLIENT LIST</c> can be filtered to this test's sockets.</summary>
    public static string UniqueServiceName() => "di" + Guid.NewGuid().ToString("N")[..10];

    public static async Task<List<string>> ClientNamesOfAsync(RedisServer server, string service) =>
        (await server.ClientListAsync()).Select(c => c.Name).Where(n => n.StartsWith($"{service}:", StringComparison.Ordinal)).ToList();

    /// <summary>The server notices closed sockets asynchronously: polls until none of <paramref name="service"/>'s is left.</summary>
    public static Task AssertNoSocketsOfAsync(RedisServer server, string service) =>
        Eventually.TrueAsync(
            async () => (await ClientNamesOfAsync(server, service)).Count == 0,
            TimeSpan.FromSeconds(15),
            $"no socket named {service}:* is left on the server after the pools closed");
}
