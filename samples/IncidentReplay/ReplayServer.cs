using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>The Redis the replay runs against: its own redis-server (through RedisPoolKit.Testing), or one named with --redis.</summary>
internal sealed class ReplayServer : IAsyncDisposable
{
    private readonly RedisServer? _server;

    private ReplayServer(string endpoint, RedisServer? server)
    {
        Endpoint = endpoint;
        _server = server;
    }

    public string Endpoint { get; }

    public bool Owned => _server is not null;

    /// <summary>The harness's admin connection, opened before anything else: reused so the replay adds no socket of its own.</summary>
    public ConnectionMultiplexer? Admin => _server?.Admin;

    public static ReplayServer Existing(string endpoint) => new(endpoint, server: null);

    public static async Task<ReplayServer> StartAsync(int maxClients)
    {
        var server = await RedisServer.StartAsync(new RedisServerOptions { Arguments = { "--maxclients", maxClients.ToString(System.Globalization.CultureInfo.InvariantCulture) } }).ConfigureAwait(false);
        return new ReplayServer(server.ConnectionString, server);
    }

    public ValueTask DisposeAsync() => _server?.DisposeAsync() ?? ValueTask.CompletedTask;
}
