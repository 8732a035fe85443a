using RedisPoolKit.Cli.Redis;

namespace RedisPoolKit.Cli.Inspect;

/// <summary>Turns snapshots into the inspect report: pool sockets by service → instance → pool → role, the rest by host or name.</summary>
internal static class ClientGrouping
{
    public const double WarningUtilization = 0.80;
    public const double CriticalUtilization = 0.95;

    public static string Level(double? utilization) => utilization switch
    {
        null => "unknown",
        >= CriticalUtilization => "critical",
        >= WarningUtilization => "warning",
        _ => "ok",
    };

    public static InspectReport Report(IReadOnlyList<ServerSnapshot> snapshots, int top = 5)
    {
        var servers = snapshots.Select(s => Server(s, top)).ToList();
        var busiest = servers.OrderByDescending(s => s.Utilization ?? -1).FirstOrDefault();
        var everyClient = snapshots.SelectMany(s => s.Clients ?? []).ToList();
        return new InspectReport(
            busiest?.Endpoint,
            busiest?.ConnectedClients,
            busiest?.MaxClients,
            busiest?.Utilization,
            Level(busiest?.Utilization),
            busiest?.BlockedClients,
            busiest?.RejectedConnections,
            Services(everyClient),
            servers,
            [.. servers.SelectMany(s => s.Unseen)]);
    }

    /// <summary>The (service, pool) pairs of every RedisPoolKit socket: the fleet keys worth reading directly.</summary>
    public static IEnumerable<(string Service, string Pool)> ServicePools(IEnumerable<ServerSnapshot> snapshots) =>
        snapshots.SelectMany(s => s.Clients ?? []).Select(c => c.PoolName).OfType<PoolClientName>().Select(n => (n.Service, n.Pool)).Distinct();

    /// <summary>Each fleet key's registrations by the server's clock, next to the sockets of that service and pool.</summary>
    public static IReadOnlyList<FleetReport> Fleets(IReadOnlyList<ServerSnapshot> snapshots, IReadOnlyList<FleetKeySnapshot> keys)
    {
        var listed = snapshots.Where(s => s.Clients is not null).ToList();
        var result = new List<FleetReport>();
        foreach (var key in keys)
        {
            var sockets = listed
                .SelectMany(s => s.Clients!.Select(c => (s.Endpoint, Name: c.PoolName)))
                .Where(x => x.Name is { } n && n.Service == key.Service && n.Pool == key.Pool)
                .Select(x => (x.Endpoint, x.Name!.Instance))
                .ToList();
            int? SocketsOf(string instance) => listed.Count == 0 ? null : sockets.Count(x => x.Instance == instance);
            var registered = key.Registrations
                .Select(r => new FleetInstanceReport(r.InstanceId, r.ExpiresAtMs < key.ServerTimeMs ? "expired" : "live", r.ExpiresAtMs - key.ServerTimeMs, SocketsOf(r.InstanceId)))
                .OrderBy(i => i.State == "live" ? 0 : 1).ThenBy(i => i.InstanceId, StringComparer.Ordinal);
            var ids = key.Registrations.Select(r => r.InstanceId).ToHashSet(StringComparer.Ordinal);
            var unregistered = sockets.Select(x => x.Instance).Where(i => !ids.Contains(i)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                .Select(i => new FleetInstanceReport(i, "unregistered", null, SocketsOf(i)));
            result.Add(new FleetReport(
                key.Service,
                key.Pool,
                key.Key,
                key.Endpoint,
                key.ServerTimeMs,
                key.Registrations.Count(r => r.ExpiresAtMs >= key.ServerTimeMs),
                key.Registrations.Count(r => r.ExpiresAtMs < key.ServerTimeMs),
                listed.Count == 0 ? null : sockets.Count,
                [.. listed.Select(s => new FleetNodeSockets(s.Endpoint, sockets.Count(x => x.Endpoint == s.Endpoint)))],
                [.. registered, .. unregistered]));
        }

        return result;
    }

    public static ServerReport Server(ServerSnapshot snapshot, int top = 5)
    {
        var clients = snapshot.Clients ?? [];
        return new ServerReport(
            snapshot.Endpoint,
            snapshot.RedisVersion,
            snapshot.ConnectedClients,
            snapshot.MaxClients,
            snapshot.Utilization,
            Level(snapshot.Utilization),
            snapshot.BlockedClients,
            snapshot.RejectedConnections,
            snapshot.Clients?.Count,
            Services(clients),
            Unnamed(clients),
            OtherNames(clients),
            // The tool's own sockets are listed (other names) but never ranked as a holder.
            TopHolders([.. clients.Where(c => !snapshot.OwnClientIds.Contains(c.Id))], top),
            [.. clients.Where(c => c.IsBlocked).OrderByDescending(c => c.IdleSeconds).Select(c => new BlockedClient(c.Id, c.Name, c.Address, c.Command, c.IdleSeconds))],
            [.. snapshot.Unseen.Select(u => new UnseenReport(snapshot.Endpoint, u.What, u.Reason, u.Missing))]);
    }

    public static IReadOnlyList<ServiceGroup> Services(IEnumerable<ClientEntry> clients)
    {
        var named = clients.Select(c => (Client: c, Name: c.PoolName)).Where(x => x.Name is not null).ToList();
        return
        [
            .. named.GroupBy(x => x.Name!.Service, StringComparer.Ordinal)
                .Select(service => new ServiceGroup(
                    service.Key,
                    service.Count(),
                    [
                        .. service.GroupBy(x => x.Name!.Instance, StringComparer.Ordinal)
                            .Select(instance => new InstanceGroup(
                                instance.Key,
                                instance.Count(),
                                [
                                    .. instance.GroupBy(x => x.Name!.Pool, StringComparer.Ordinal)
                                        .Select(pool => new PoolGroup(
                                            pool.Key,
                                            pool.Count(),
                                            [
                                                .. pool.GroupBy(x => x.Name!.Role, StringComparer.Ordinal)
                                                    .Select(role => Role(role.Key, [.. role.Select(x => x.Client)]))
                                                    .OrderBy(r => RoleOrder(r.Name)),
                                            ]))
                                        .OrderByDescending(p => p.Connections).ThenBy(p => p.Name, StringComparer.Ordinal),
                                ]))
                            .OrderByDescending(i => i.Connections).ThenBy(i => i.Name, StringComparer.Ordinal),
                    ]))
                .OrderByDescending(s => s.Connections).ThenBy(s => s.Name, StringComparer.Ordinal),
        ];
    }

    public static IReadOnlyList<UnnamedGroup> Unnamed(IEnumerable<ClientEntry> clients) =>
    [
        .. clients.Where(c => c.Name.Length == 0)
            .GroupBy(c => (c.Host, c.LibraryName))
            .Select(g => new UnnamedGroup(g.Key.Host, g.Key.LibraryName, g.Count(), g.Max(c => c.AgeSeconds), g.Max(c => c.IdleSeconds), g.Count(c => c.IsBlocked)))
            .OrderByDescending(g => g.Connections).ThenBy(g => g.Host, StringComparer.Ordinal),
    ];

    public static IReadOnlyList<OtherNameGroup> OtherNames(IEnumerable<ClientEntry> clients) =>
    [
        .. clients.Where(c => c.Name.Length > 0 && c.PoolName is null)
            .GroupBy(c => c.Name, StringComparer.Ordinal)
            .Select(g => new OtherNameGroup(g.Key, g.Count(), g.Max(c => c.AgeSeconds), g.Max(c => c.IdleSeconds), g.Count(c => c.IsBlocked)))
            .OrderByDescending(g => g.Connections).ThenBy(g => g.Name, StringComparer.Ordinal),
    ];

    /// <summary>The biggest holders: service instances, unnamed hosts and other names, side by side.</summary>
    public static IReadOnlyList<Holder> TopHolders(IReadOnlyCollection<ClientEntry> clients, int top)
    {
        if (clients.Count == 0)
        {
            return [];
        }

        return
        [
            .. clients
                .GroupBy(c => c.PoolName is { } n ? (n.Service + ":" + n.Instance, "instance") : c.Name.Length == 0 ? (c.Host, "host") : (c.Name, "name"))
                .Select(g => new Holder(g.Key.Item1, g.Key.Item2, g.Count(), (double)g.Count() / clients.Count))
                .OrderByDescending(h => h.Connections).ThenBy(h => h.Name, StringComparer.Ordinal)
                .Take(top),
        ];
    }

    /// <summary>The biggest holders by service (pool sockets), host (unnamed clients) or name (other names).</summary>
    public static IReadOnlyList<Holder> TopServices(IReadOnlyCollection<ClientEntry> clients, int top)
    {
        if (clients.Count == 0)
        {
            return [];
        }

        return
        [
            .. clients
                .GroupBy(c => c.PoolName is { } n ? (n.Service, "service") : c.Name.Length == 0 ? (c.Host, "host") : (c.Name, "name"))
                .Select(g => new Holder(g.Key.Item1, g.Key.Item2, g.Count(), (double)g.Count() / clients.Count))
                .OrderByDescending(h => h.Connections).ThenBy(h => h.Name, StringComparer.Ordinal)
                .Take(top),
        ];
    }

    private static RoleGroup Role(string name, List<ClientEntry> clients) => new(
        name,
        clients.Count,
        clients.Max(c => c.AgeSeconds),
        clients.Max(c => c.IdleSeconds),
        clients.Count(c => c.IsBlocked),
        [.. clients.Where(c => c.IsBlocked).Select(c => c.Command).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)]);

    private static int RoleOrder(string role)
    {
        var index = PoolClientName.Roles.ToList().IndexOf(role);
        return index < 0 ? int.MaxValue : index;
    }
}
