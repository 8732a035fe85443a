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
    IReadOnlyList<UnseenReport> Unseen);

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
