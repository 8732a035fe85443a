using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>
/// The one connection that watches the server. It is opened before any load so a full server cannot refuse it,
/// and it holds a single socket (RESP3 with the subscription shared), so it adds exactly 1 to connected_clients.
/// </summary>
internal sealed class ServerAdmin : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _connection;
    private readonly IServer _server;
    private readonly bool _owned;

    private ServerAdmin(ConnectionMultiplexer connection, string endpoint, bool owned)
    {
        _connection = connection;
        _owned = owned;
        _server = connection.GetServer(endpoint);
        Database = connection.GetDatabase();
    }

    /// <summary>The longest a drain may take however steadily it progresses: it bounds a hang, not a slow machine.</summary>
    public static readonly TimeSpan DrainCap = TimeSpan.FromSeconds(60);

    public IDatabase Database { get; }

    public static async Task<ServerAdmin> ConnectAsync(string endpoint)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.AllowAdmin = true;
        options.AbortOnConnectFail = true;
        options.Protocol = RedisProtocol.Resp3;
        options.SharedSubscriptionConnection = true;
        options.ClientName = "incident-replay:admin";
        var connection = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        return new ServerAdmin(connection, endpoint, owned: true);
    }

    /// <summary>Watches through a connection someone else opened (and disposes).</summary>
    public static ServerAdmin Over(ConnectionMultiplexer connection, string endpoint) => new(connection, endpoint, owned: false);

    public async Task<(long Connected, long Blocked, long Rejected)> SampleAsync()
    {
        var info = (string?)await Database.ExecuteAsync("INFO", "clients", "stats").ConfigureAwait(false) ?? "";
        return (Field(info, "connected_clients"), Field(info, "blocked_clients"), Field(info, "rejected_connections"));
    }

    public async Task<string> RedisVersionAsync()
    {
        var info = await _server.InfoAsync("server").ConfigureAwait(false);
        return info.SelectMany(g => g).FirstOrDefault(p => p.Key == "redis_version").Value ?? _server.Version.ToString();
    }

    public async Task<int> GetMaxClientsAsync()
    {
        var pairs = await _server.ConfigGetAsync("maxclients").ConfigureAwait(false);
        return int.Parse(pairs[0].Value, CultureInfo.InvariantCulture);
    }

    public Task SetMaxClientsAsync(int value) => _server.ConfigSetAsync("maxclients", value.ToString(CultureInfo.InvariantCulture));

    /// <summary>Waits until only this connection (and what was there before the replay) is left on the server.</summary>
    public async Task<long> WaitForClientsAtMostAsync(long target, TimeSpan timeout)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        long connected;
        while ((connected = (await SampleAsync().ConfigureAwait(false)).Connected) > target && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(100).ConfigureAwait(false);
        }

        return connected;
    }

    /// <summary>
    /// Waits while the consumers drain <paramref name="key"/>: until it is empty, or it has not shrunk for
    /// <paramref name="stall"/> (the consumers have stopped), or <paramref name="cap"/> has passed. Waiting on progress
    /// rather than for a fixed time lets a slow (loaded) machine finish a drain its consumers are still making.
    /// </summary>
    public async Task DrainAsync(RedisKey key, TimeSpan stall, TimeSpan cap)
    {
        var started = Stopwatch.GetTimestamp();
        var progressed = started;
        var left = await Database.ListLengthAsync(key).ConfigureAwait(false);
        while (left > 0 && Stopwatch.GetElapsedTime(progressed) < stall && Stopwatch.GetElapsedTime(started) < cap)
        {
            await Task.Delay(100).ConfigureAwait(false);
            var now = await Database.ListLengthAsync(key).ConfigureAwait(false);
            if (now < left)
            {
                progressed = Stopwatch.GetTimestamp();
            }

            left = now;
        }
    }

    public ValueTask DisposeAsync() => _owned ? _connection.DisposeAsync() : ValueTask.CompletedTask;

    private static long Field(string info, string name)
    {
        foreach (var line in info.AsSpan().EnumerateLines())
        {
            if (line.StartsWith(name) && line.Length > name.Length && line[name.Length] == ':')
            {
                return long.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
