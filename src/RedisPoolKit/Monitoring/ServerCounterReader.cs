using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>The server's client counters as read once, before the monitor stamps and classifies them.</summary>
internal readonly record struct ServerCounters(string EndPoint, long ConnectedClients, long? MaxClients, long BlockedClients, long RejectedConnections)
{
    public double? Utilization => MaxClients is > 0 ? (double)ConnectedClients / MaxClients.Value : null;
}

/// <summary>Where the monitor gets its counters from; tests substitute a fake.</summary>
internal interface IServerCounterReader
{
    /// <summary>The counters of the busiest server, or <see langword="null"/> when there is nothing to read over.</summary>
    Task<ServerCounters?> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Why no reading can ever be taken (the server refuses <c>INFO</c>), or <see langword="null"/> while readings are possible.</summary>
    string? Unavailable => null;
}

/// <summary>
/// Reads <c>INFO clients</c>, <c>INFO stats</c> and, where INFO lacks it, <c>CONFIG GET maxclients</c> over a
/// multiplexer the pool already holds: a full server refuses new sockets, so the monitor never opens one.
/// </summary>
/// <remarks>
/// Managed services and ACLs forbid some of these commands. Each forbidden command is logged once and then
/// no longer tried; the reader carries on with what it can read. Without <c>INFO</c> it can read nothing: the
/// monitor is then <see cref="Unavailable"/>. Without <c>maxclients</c> from the server it falls back to
/// <see cref="RedisPoolMonitorOptions.MaxClients"/>, else reports counts without utilization and says so once.
/// </remarks>
internal sealed class RedisServerCounterReader : IServerCounterReader
{
    private readonly Func<IConnectionMultiplexer?> _multiplexer;
    private readonly string _poolName;
    private readonly ILogger _logger;
    private readonly int? _maxClients;
    private volatile string? _unavailable;
    private volatile bool _statsForbidden;
    private volatile bool _configForbidden;
    private int _maxClientsUnknownSaid;

    public RedisServerCounterReader(Func<IConnectionMultiplexer?> multiplexer, string poolName, ILogger logger, int? maxClients = null)
    {
        _multiplexer = multiplexer;
        _poolName = poolName;
        _logger = logger;
        _maxClients = maxClients;
    }

    public string? Unavailable => _unavailable;

    public async Task<ServerCounters?> ReadAsync(CancellationToken cancellationToken)
    {
        var multiplexer = _multiplexer();
        if (multiplexer is not { IsConnected: true } || _unavailable is not null)
        {
            return null;
        }

        ServerCounters? busiest = null;
        foreach (var server in multiplexer.GetServers())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!server.IsConnected)
            {
                continue;
            }

            var counters = await ReadAsync(server, cancellationToken).ConfigureAwait(false);
            if (counters is { } read && (busiest is null || (read.Utilization ?? 0) > (busiest.Value.Utilization ?? 0)))
            {
                busiest = read;
            }
        }

        return busiest;
    }

    private async Task<ServerCounters?> ReadAsync(IServer server, CancellationToken cancellationToken)
    {
        var endPoint = RedisConnectionFactory.Format(server.EndPoint);
        var clients = await TryInfoAsync(server, "clients", endPoint, "connected_clients, blocked_clients and utilization", cancellationToken).ConfigureAwait(false);
        if (clients is null)
        {
            return null;
        }

        var maxClients = Find(clients, "maxclients");
        if (maxClients is null && !_configForbidden)
        {
            maxClients = await TryConfigMaxClientsAsync(server, endPoint, cancellationToken).ConfigureAwait(false);
        }

        maxClients ??= _maxClients;
        if (maxClients is null && Interlocked.Exchange(ref _maxClientsUnknownSaid, 1) == 0)
        {
            Log.MonitorMaxClientsUnknown(_logger, _poolName, endPoint);
        }

        long rejected = 0;
        if (!_statsForbidden)
        {
            var stats = await TryInfoAsync(server, "stats", endPoint, "rejected_connections", cancellationToken).ConfigureAwait(false);
            rejected = stats is null ? 0 : Find(stats, "rejected_connections") ?? 0;
        }

        return new ServerCounters(endPoint, Find(clients, "connected_clients") ?? 0, maxClients, Find(clients, "blocked_clients") ?? 0, rejected);
    }

    private async Task<IGrouping<string, KeyValuePair<string, string>>[]?> TryInfoAsync(IServer server, string section, string endPoint, string missing, CancellationToken cancellationToken)
    {
        try
        {
            // StackExchange.Redis commands take no token: disposal must not wait out AsyncTimeout behind a stalled server.
            return await server.InfoAsync(section).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
        {
            if (section == "clients")
            {
                _unavailable = $"the server refused INFO ({Describe(ex)})";
                Log.PoolFeatureOff(_logger, _poolName, "the server monitor", "INFO clients", Describe(ex), "server utilization: the redispoolkit.server.* gauges, the utilization warnings and events, and the health check's utilization (it reports the monitor as unavailable)", ServerPermissions.Remedy(ex, "INFO", "+info"));
            }
            else
            {
                _statsForbidden = true;
                Log.MonitorCommandForbidden(_logger, _poolName, "INFO " + section, endPoint, Describe(ex), missing);
            }

            return null;
        }
    }

    private async Task<long?> TryConfigMaxClientsAsync(IServer server, string endPoint, CancellationToken cancellationToken)
    {
        try
        {
            return Find(await server.ConfigGetAsync("maxclients").WaitAsync(cancellationToken).ConfigureAwait(false), "maxclients");
        }
        catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
        {
            _configForbidden = true;
            Log.MonitorCommandForbidden(_logger, _poolName, "CONFIG GET maxclients", endPoint, Describe(ex), "maxclients and utilization");
            return null;
        }
    }

    /// <summary>A numeric field of an <c>INFO</c> reply, or null when absent.</summary>
    internal static long? Find(IGrouping<string, KeyValuePair<string, string>>[] info, string key)
    {
        foreach (var group in info)
        {
            if (Find(group, key) is { } value)
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>A numeric field of an <c>INFO</c> section or a <c>CONFIG GET</c> reply, or null when absent.</summary>
    private static long? Find(IEnumerable<KeyValuePair<string, string>> pairs, string key)
    {
        foreach (var pair in pairs)
        {
            if (string.Equals(pair.Key, key, StringComparison.OrdinalIgnoreCase) && long.TryParse(pair.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
        }

        return null;
    }

    private static string Describe(Exception ex)
    {
        var firstLine = ex.Message.Split('\n', 2)[0].Trim();
        return firstLine.Length > 120 ? firstLine[..120] : firstLine;
    }
}
