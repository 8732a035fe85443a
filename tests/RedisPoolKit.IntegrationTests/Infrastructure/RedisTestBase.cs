using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>
/// Base for tests that start their own servers and proxies: everything started through it is disposed
/// after the test, and each server's log tail and each proxy's counters are written to the test output
/// first (test runners show that output for failed tests), so a failure can be diagnosed without a rerun.
/// </summary>
public abstract class RedisTestBase : IAsyncLifetime
{
    private readonly List<RedisServer> _servers = [];
    private readonly List<FaultProxy> _proxies = [];

    protected RedisTestBase(ITestOutputHelper output) => Output = output;

    protected ITestOutputHelper Output { get; }

    /// <summary>Starts a server owned by this test.</summary>
    protected async Task<RedisServer> StartServerAsync(RedisServerOptions? options = null)
    {
        var server = await RedisServer.StartAsync(options);
        _servers.Add(server);
        return server;
    }

    /// <summary>Starts a fault proxy in front of <paramref name="server"/>, owned by this test.</summary>
    protected FaultProxy StartProxy(RedisServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        var proxy = FaultProxy.Start(server.EndPoint);
        _proxies.Add(proxy);
        return proxy;
    }

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var proxy in _proxies)
        {
            Output.WriteLine($"{proxy}");
            await proxy.DisposeAsync();
        }

        foreach (var server in _servers)
        {
            Output.WriteLine($"--- {server}: log tail ---{Environment.NewLine}{server.LogTail()}");
            await server.DisposeAsync();
        }
    }
}
