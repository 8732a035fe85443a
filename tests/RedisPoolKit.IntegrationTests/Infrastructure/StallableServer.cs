using System.Globalization;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>A test class's own server that a test can stall for every client at a known moment.</summary>
public abstract class StallableServer : IAsyncLifetime
{
    private RedisServer? _server;

    protected RedisServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>
    /// Stalls every client of the server (<c>CLIENT PAUSE ALL</c>) for <paramref name="duration"/>. The outer task
    /// completes once the server has acknowledged the pause, so any command sent afterwards is held: no fixed delay
    /// has to guess when the stall began. The inner task completes when the stall is over (a <c>PING</c> on the
    /// admin connection is held until then).
    /// </summary>
    protected async Task<Task> StallAsync(TimeSpan duration)
    {
        var milliseconds = ((long)duration.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        await Server.Admin.GetServer(Server.EndPoint).ExecuteAsync("CLIENT", "PAUSE", milliseconds, "ALL");
        return StallOverAsync(duration);
    }

    /// <summary>A PING held until the stall is over; asked again when a stall outlasts the admin connection's own timeout.</summary>
    private async Task StallOverAsync(TimeSpan duration)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (true)
        {
            try
            {
                await Server.Admin.GetDatabase().PingAsync();
                return;
            }
            catch (RedisTimeoutException) when (TimeProvider.System.GetElapsedTime(deadline) < duration + TimeSpan.FromSeconds(30))
            {
            }
        }
    }
}
