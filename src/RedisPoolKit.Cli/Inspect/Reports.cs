using System.Text.Json.Serialization;

namespace RedisPoolKit.Cli.Inspect;

/// <summary>
/// <c>redispool inspect --json</c>. The top-level counters are those of the most utilized master (the one an
/// alert fires on); <see cref="Services"/> adds up every master; <see cref="Servers"/> has each master in full.
/// </summary>
internal sealed record InspectReport(
    string? Endpoint,
    long? ConnectedClients,
    [property: JsonPropertyName("maxclients")] long? MaxClients,
    double? Utilization,
    string Level,
    long? BlockedClients,
    long? RejectedConnections,
    IReadOnlyList<ServiceGroup> Services,
    IReadOnlyList<ServerReport> Servers,
    IReadOnlyList<UnseenReport> Unseen)
{
    /// <summary>The fleet budget's registrations, one per service and pool that has a fleet key.</summary>
    public IReadOnlyList<FleetReport> Fleets { get; init; } = [];
}

/// <summary>
/// One fleet (service and pool with the fleet budget on): its registrations on the server that holds the key, by the
/// server's clock, next to the sockets <c>CLIENT LIST</c> shows for that service and pool on every master.
/// </summary>
/// <param name="Service">The service (<c>ServiceName</c>) of the key.</param>
/// <param name="Pool">The pool (<c>Name</c>) of the key.</param>
/// <param name="Key"><c>redispoolkit:fleet:{service:pool}</c>.</param>
/// <param name="Endpoint">The master that holds <paramref name="Key"/>.</param>
/// <param name="ServerTimeMs">The server's <c>TIME</c> (Unix milliseconds) read right after the registrations.</param>
/// <param name="Live">Registrations that have not expired: the instances the fleet's share is divided by.</param>
/// <param name="Expired">Registrations past their expiry that the next heartbeat removes.</param>
/// <param name="Sockets">Sockets of this service and pool on every master; null when <c>CLIENT LIST</c> was refused everywhere.</param>
/// <param name="Nodes">Those sockets per master (the fleet's budget caps each one).</param>
/// <param name="Instances">Registered instances, then instances holding sockets without a registration.</param>
internal sealed record FleetReport(
    string Service,
    string Pool,
    string Key,
    string Endpoint,
    long ServerTimeMs,
    int Live,
    int Expired,
    int? Sockets,
    IReadOnlyList<FleetNodeSockets> Nodes,
    IReadOnlyList<FleetInstanceReport> Instances);

/// <param name="InstanceId">The registered member (the pool's <c>InstanceId</c>), or the instance part of its sockets' names.</param>
/// <param name="State"><c>live</c>, <c>expired</c> (past its expiry, not yet removed) or <c>unregistered</c> (holds sockets, no registration).</param>
/// <param name="ExpiresInMs">Expiry minus the server's time: negative once expired; null when unregistered.</param>
/// <param name="Sockets">Its sockets for this pool on every master; null when <c>CLIENT LIST</c> was refused everywhere.</param>
internal sealed record FleetInstanceReport(string InstanceId, string State, long? ExpiresInMs, int? Sockets);

internal sealed record FleetNodeSockets(string Endpoint, int Sockets);

internal sealed record ServerReport(
    string Endpoint,
    string? RedisVersion,
    long? ConnectedClients,
    [property: JsonPropertyName("maxclients")] long? MaxClients,
    double? Utilization,
    string Level,
    long? BlockedClients,
    long? RejectedConnections,
    int? ClientsListed,
    IReadOnlyList<ServiceGroup> Services,
    IReadOnlyList<UnnamedGroup> Unnamed,
    IReadOnlyList<OtherNameGroup> OtherNames,
    IReadOnlyList<Holder> TopHolders,
    IReadOnlyList<BlockedClient> Blocked,
    IReadOnlyList<UnseenReport> Unseen);

internal sealed record ServiceGroup(string Name, int Connections, IReadOnlyList<InstanceGroup> Instances);

internal sealed record InstanceGroup(string Name, int Connections, IReadOnlyList<PoolGroup> Pools);

internal sealed record PoolGroup(string Name, int Connections, IReadOnlyList<RoleGroup> Roles);

internal sealed record RoleGroup(
    string Name,
    int Connections,
    long OldestAgeSeconds,
    long LongestIdleSeconds,
    int Blocked,
    IReadOnlyList<string> BlockedCommands);

/// <summary>Clients without a name, by the host that opened them and the library it reported (<c>CLIENT SETINFO lib-name</c>).</summary>
internal sealed record UnnamedGroup(string Host, string LibraryName, int Connections, long OldestAgeSeconds, long LongestIdleSeconds, int Blocked);

/// <summary>Clients named in some other way than RedisPoolKit's format, by name.</summary>
internal sealed record OtherNameGroup(string Name, int Connections, long OldestAgeSeconds, long LongestIdleSeconds, int Blocked);

/// <summary>
/// One holder of connections: a service instance (<c>service:instance</c>, kind <c>instance</c>), an unnamed
/// host (kind <c>host</c>) or another client name (kind <c>name</c>), with its share of the listed clients.
/// </summary>
internal sealed record Holder(string Name, string Kind, int Connections, double Share);

internal sealed record BlockedClient(long Id, string Name, string Address, string Command, long IdleSeconds);

internal sealed record UnseenReport(string Endpoint, string What, string Reason, string Missing);
