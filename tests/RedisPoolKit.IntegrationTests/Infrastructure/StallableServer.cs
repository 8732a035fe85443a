using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>A test class's own server with <c>DEBUG</c> enabled, so a test can stall it with <c>DEBUG SLEEP</c>.</summary>
public abstract class StallableServer : IAsyncLifetime
{
    private RedisServer? _server;

    protected RedisServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    public async Task InitializeAsync()
    {
        var options = new RedisServerOptions();
        options.Arguments.Add("--enable-debug-command");
        options.Arguments.Add("local");
        _server = await RedisServer.StartAsync(options);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>Stalls the whole server for <paramref name="seconds"/> over the admin connection.</summary>
    protected Task<StackExchange.Redis.RedisResult> StallAsync(int seconds) =>
        Server.Admin.GetServer(Server.EndPoint).ExecuteAsync("DEBUG", "SLEEP", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
