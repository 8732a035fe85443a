using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>One node's client counters as read once, before the monitor stamps and classifies them. The node is "host:port", as <see cref="RedisConnectionFactory.Format"/> writes it.</summary>
internal readonly record struct ServerCounters(string EndPoint, long ConnectedClients, long? MaxClients, long BlockedClients, long RejectedConnections, long ClusterConnections = 0)
{
    public double? Utilization => MaxClients is > 0 ? (double)(ConnectedClients + ClusterConnections) / MaxClients.Value : null;
}

/// <summary>One round of reads: the counters of every node that answered, and every node the pool knows (read or not).</summary>
/// <param name="Readings">One entry per node read this round.</param>
/// <param name="Nodes">Every node the pool's multiplexers know, connected or not; a node missing here has left the topology.</param>
internal sealed record ServerReadout(IReadOnlyList<ServerCounters> Readings, IReadOnlyCollection<string> Nodes);

/// <summary>Where the monitor gets its counters from; tests substitute a fake.</summary>
internal interface IServerCounterReader
{
    /// <summary>The counters of every node it could read, or <see langword="null"/> when there is nothing to read over.</summary>
    Task<ServerReadout?> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Why no reading can ever be taken (every node refuses <c>INFO</c>), or <see langword="null"/> while readings are possible.</summary>
    string? Unavailable => null;
}

/// <summary>
/// Reads <c>INFO clients</c>, <c>INFO stats</c> and, where INFO lacks it, <c>CONFIG GET maxclients</c> from every
/// node over a multiplexer socket the pool already holds there: a full node refuses new sockets, so the monitor
/// never opens one. A standalone server is one node; a cluster is every node its multiplexer is connected to.
/// </summary>
/// <remarks>
/// <para>
/// Each node is read through the <see cref="IServer"/> of a connected multiplexer for that endpoint, so the
/// commands travel on the multiplexer's own interactive socket to it. A node whose socket is down in every
/// multiplexer is skipped (its last reading stands) rather than read over a connection the read would have to open.
/// </para>
/// <para>
/// Managed services and ACLs forbid some of these commands. Each forbidden command is logged once per node and
/// then no longer tried on that node; the reader carries on with what it can read. A node that refuses <c>INFO</c>
/// is not read again; when every node does, the monitor is <see cref="Unavailable"/>. Without <c>maxclients</c>
/// from a node it falls back to <see cref="RedisPoolMonitorOptions.MaxClients"/>, else reports that node's counts
/// without utilization and says so once for that node.
/// </para>
/// </remarks>
internal sealed class RedisServerCounterReader : IServerCounterReader
{
    private readonly Func<IEnumerable<IConnectionMultiplexer>> _multiplexers;
    private readonly string _poolName;
    private readonly ILogger _logger;
    private readonly int? _maxClients;
    private readonly ConcurrentDictionary<string, NodeRefusals> _refusals = new(StringComparer.Ordinal);
    private volatile string? _unavailable;
    private int _featureOffSaid;

    /// <summary>Creates a reader over the multiplexers <paramref name="multiplexers"/> returns (the pool's connected ones, in order).</summary>
    public RedisServerCounterReader(Func<IEnumerable<IConnectionMultiplexer>> multiplexers, string poolName, ILogger logger, int? maxClients = null)
    {
        _multiplexers = multiplexers;
        _poolName = poolName;
        _logger = logger;
        _maxClients = maxClients;
    }

    public string? Unavailable => _unavailable;

    public async Task<ServerReadout?> ReadAsync(CancellationToken cancellationToken)
    {
        if (_unavailable is not null)
        {
            return null;
        }

        // Per endpoint, the IServer of the first multiplexer whose socket to that node is up.
        var servers = new Dictionary<string, IServer?>(StringComparer.Ordinal);
        var anyConnected = false;
        foreach (var multiplexer in _multiplexers())
        {
            if (!multiplexer.IsConnected)
            {
                continue;
            }

            anyConnected = true;
            foreach (var server in multiplexer.GetServers())
            {
                var endPoint = RedisConnectionFactory.Format(server.EndPoint);
                if (!servers.TryGetValue(endPoint, out var chosen) || chosen is null)
                {
                    servers[endPoint] = server.IsConnected ? server : null;
                }
            }
        }

        if (!anyConnected)
        {
            return null;
        }

        var readings = new List<ServerCounters>(servers.Count);
        List<(string EndPoint, Exception Failure)>? failures = null;
        foreach (var (endPoint, server) in servers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var refusals = _refusals.GetOrAdd(endPoint, static _ => new NodeRefusals());
            if (server is null || refusals.Info is not null)
            {
                continue;
            }

            try
            {
                if (await ReadAsync(server, endPoint, refusals, cancellationToken).ConfigureAwait(false) is { } counters)
                {
                    readings.Add(counters);
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // One node's socket dropping mid-read must not cost the other nodes their reading.
                (failures ??= []).Add((endPoint, ex));
            }
        }

        if (failures is not null)
        {
            // Nothing read at all: the poll failed, as it does on a standalone server.
            if (readings.Count == 0)
            {
                ExceptionDispatchInfo.Throw(failures[0].Failure);
            }

            foreach (var (endPoint, failure) in failures)
            {
                var cause = endPoint + ": " + ExceptionText.Brief(failure);
                Log.MonitorPollFailed(_logger, _poolName, cause);
            }
        }

        // One node refusing INFO (an ACL set on it alone) leaves the others monitored; all of them refusing leaves nothing to read.
        if (readings.Count == 0 && servers.Count > 0 && servers.Keys.All(node => _refusals[node].Info is not null))
        {
            _unavailable = _refusals[servers.Keys.First()].Info;
            return null;
        }

        return new ServerReadout(readings, servers.Keys);
    }

    private async Task<ServerCounters?> ReadAsync(IServer server, string endPoint, NodeRefusals refusals, CancellationToken cancellationToken)
    {
        var clients = await TryInfoAsync(server, "clients", endPoint, refusals, "connected_clients, blocked_clients and utilization", cancellationToken).ConfigureAwait(false);
        if (clients is null)
        {
            return null;
        }

        var maxClients = Find(clients, "maxclients");
        if (maxClients is null && !refusals.Config)
        {
            maxClients = await TryConfigMaxClientsAsync(server, endPoint, refusals, cancellationToken).ConfigureAwait(false);
        }

        maxClients ??= _maxClients;
        if (maxClients is null && !refusals.MaxClientsUnknownSaid)
        {
            refusals.MaxClientsUnknownSaid = true;
            Log.MonitorMaxClientsUnknown(_logger, _poolName, endPoint);
        }

        long rejected = 0;
        if (!refusals.Stats)
        {
            var stats = await TryInfoAsync(server, "stats", endPoint, refusals, "rejected_connections", cancellationToken).ConfigureAwait(false);
            rejected = stats is null ? 0 : Find(stats, "rejected_connections") ?? 0;
        }

        return new ServerCounters(endPoint, Find(clients, "connected_clients") ?? 0, maxClients, Find(clients, "blocked_clients") ?? 0, rejected, Find(clients, "cluster_connections") ?? 0);
    }

    private async Task<IGrouping<string, KeyValuePair<string, string>>[]?> TryInfoAsync(IServer server, string section, string endPoint, NodeRefusals refusals, string missing, CancellationToken cancellationToken)
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
                refusals.Info = $"the server refused INFO ({Describe(ex)})";
                if (Interlocked.Exchange(ref _featureOffSaid, 1) == 0)
                {
                    Log.PoolFeatureOff(_logger, _poolName, "the server monitor", "INFO clients", Describe(ex), "server utilization: the redispoolkit.server.* gauges, the utilization warnings and events, and the health check's utilization (it reports the monitor as unavailable)", ServerPermissions.Remedy(ex, "INFO", "+info"));
                }
                else
                {
                    Log.MonitorCommandForbidden(_logger, _poolName, "INFO clients", endPoint, Describe(ex), "this node's utilization");
                }
            }
            else
            {
                refusals.Stats = true;
                Log.MonitorCommandForbidden(_logger, _poolName, "INFO " + section, endPoint, Describe(ex), missing);
            }

            return null;
        }
    }

    private async Task<long?> TryConfigMaxClientsAsync(IServer server, string endPoint, NodeRefusals refusals, CancellationToken cancellationToken)
    {
        try
        {
            return Find(await server.ConfigGetAsync("maxclients").WaitAsync(cancellationToken).ConfigureAwait(false), "maxclients");
        }
        catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
        {
            refusals.Config = true;
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

    /// <summary>What one node refused, so each refusal is said once for that node and the command not tried again there.</summary>
    private sealed class NodeRefusals
    {
        public volatile string? Info;
        public volatile bool Stats;
        public volatile bool Config;
        public volatile bool MaxClientsUnknownSaid;
    }

    private static string Describe(Exception ex)
    {
        var firstLine = ex.Message.Split('\n', 2)[0].Trim();
        return firstLine.Length > 120 ? firstLine[..120] : firstLine;
    }
}
