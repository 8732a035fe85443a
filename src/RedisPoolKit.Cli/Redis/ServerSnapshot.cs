namespace RedisPoolKit.Cli.Redis;

/// <summary>Something the tool could not read from a server, why, and what is missing from the report because of it.</summary>
/// <param name="What">The command, as an operator would type it (<c>CLIENT LIST</c>, <c>CONFIG GET timeout</c>).</param>
/// <param name="Reason">The server's or the client's answer, first line only.</param>
/// <param name="Missing">What the report cannot show without it.</param>
internal sealed record Unseen(string What, string Reason, string Missing);

/// <summary>What the tool read from one master at one moment. Every value is null when it could not be read; <see cref="Unseen"/> says why.</summary>
internal sealed class ServerSnapshot
{
    public required string Endpoint { get; init; }

    public required DateTimeOffset At { get; init; }

    public IReadOnlyDictionary<string, string> Info { get; init; } = new Dictionary<string, string>();

    public long? ConnectedClients { get; init; }

    public long? MaxClients { get; init; }

    public long? BlockedClients { get; init; }

    public long? RejectedConnections { get; init; }

    public long? ProcessId { get; init; }

    public string? RedisVersion => Info.TryGetValue("redis_version", out var v) ? v : null;

    /// <summary><c>CONFIG GET timeout</c>, seconds; 0 means idle clients are never closed.</summary>
    public long? TimeoutSeconds { get; init; }

    /// <summary><c>CONFIG GET tcp-keepalive</c>, seconds; 0 means dead peers are not detected.</summary>
    public long? TcpKeepaliveSeconds { get; init; }

    /// <summary>Every client, or null when <c>CLIENT LIST</c> was refused.</summary>
    public IReadOnlyList<ClientEntry>? Clients { get; init; }

    /// <summary>The ids of the tool's own connections to this server (never killed, shown as the tool's).</summary>
    public IReadOnlySet<long> OwnClientIds { get; init; } = new HashSet<long>();

    public IReadOnlyList<Unseen> Unseen { get; init; } = [];

    /// <summary><see cref="ConnectedClients"/> / <see cref="MaxClients"/>, or null when either is unknown.</summary>
    public double? Utilization => ConnectedClients is { } c && MaxClients is > 0 and var m ? (double)c / m : null;
}
