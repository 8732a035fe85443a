using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>
/// Tests that only need "a Redis" and leave its state as they found it share one server per run:
/// mark the class <c>[Collection(RedisCollection.Name)]</c> and take <see cref="SharedRedisFixture"/> in the constructor.
/// Use unique keys; never kill, restart, pause or reconfigure the shared server.
/// </summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<SharedRedisFixture>
{
    public const string Name = "Shared Redis server";
}

/// <summary>
/// Tests that break things (kill, restart, CONFIG SET maxclients, CLIENT PAUSE, proxy faults, timing)
/// run one at a time so they neither disturb each other nor fight for the 2 cores:
/// mark the class <c>[Collection(FaultCollection.Name)]</c> and start their own servers.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultCollection
{
    public const string Name = "Redis faults (serial)";
}

/// <summary>The server shared by <see cref="RedisCollection"/>.</summary>
public sealed class SharedRedisFixture : IAsyncLifetime
{
    private RedisServer? _server;

    public RedisServer Server => _server ?? throw new InvalidOperationException("The shared Redis server has not started.");

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
