using RedisPoolKit.Cli.Redis;

namespace RedisPoolKit.Cli.Tests.Unit;

/// <summary>Synthetic server snapshots for the pure parts (selection, checks).</summary>
internal static class Snapshots
{
    private static long s_nextId = 100;

    public static ClientEntry Client(string name = "", long idle = 0, string flags = "N", int subscriptions = 0, string command = "ping", long age = 100, string address = "10.0.0.1:5000") => new()
    {
        Id = Interlocked.Increment(ref s_nextId),
        Address = address,
        Name = name,
        AgeSeconds = age,
        IdleSeconds = idle,
        Flags = flags,
        Command = command,
        Subscriptions = subscriptions,
        LibraryName = "SE.Redis",
        User = "default",
    };

    public static ServerSnapshot Server(IReadOnlyList<ClientEntry> clients, long maxClients = 1000, long? timeout = 300, long? keepalive = 300, long rejected = 0, IEnumerable<long>? own = null, DateTimeOffset? at = null) => new()
    {
        Endpoint = "127.0.0.1:6379",
        At = at ?? DateTimeOffset.UnixEpoch,
        ConnectedClients = clients.Count,
        MaxClients = maxClients,
        BlockedClients = clients.Count(c => c.IsBlocked),
        RejectedConnections = rejected,
        TimeoutSeconds = timeout,
        TcpKeepaliveSeconds = keepalive,
        Clients = clients,
        OwnClientIds = new HashSet<long>(own ?? []),
    };
}
