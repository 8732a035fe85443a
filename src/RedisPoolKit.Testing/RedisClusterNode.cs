namespace RedisPoolKit.Testing;

/// <summary>One node of a <see cref="RedisCluster"/>: a <c>redis-server --cluster-enabled yes</c> process with its own admin socket.</summary>
public sealed class RedisClusterNode : RedisNode
{
    private RedisClusterNode(RedisServer server, RespAdminConnection admin, string nodeId)
        : base(server, admin) => NodeId = nodeId;

    /// <summary>The node's cluster id (<c>CLUSTER MYID</c>); kept across <see cref="RedisNode.RestartAsync"/>.</summary>
    public string NodeId { get; }

    private protected override string Kind => "cluster node";

    /// <summary>Whether the node is a master now (<c>ROLE</c>); a failover can change it.</summary>
    public async Task<bool> IsMasterAsync()
    {
        var role = await ExecuteAsync("ROLE").ConfigureAwait(false);
        return (string?)role[0] == "master";
    }

    /// <summary>Runs <c>CONFIG SET name value</c> on this node (for example <c>maxclients</c>).</summary>
    public Task ConfigSetAsync(string name, string value) => ExecuteAsync("CONFIG", "SET", name, value);

    internal static async Task<RedisClusterNode> StartAsync(RedisServerOptions options, CancellationToken cancellationToken)
    {
        var (server, admin) = await LaunchAsync(options, cancellationToken).ConfigureAwait(false);
        try
        {
            var id = (string?)await admin.ExecuteAsync("CLUSTER", ["MYID"], cancellationToken).ConfigureAwait(false);
            return new RedisClusterNode(server, admin, id ?? throw new InvalidOperationException("CLUSTER MYID answered nil."));
        }
        catch
        {
            await admin.DisposeAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal async Task<IReadOnlyList<ClusterNodeEntry>> ClusterNodesAsync() =>
        ClusterNodeEntry.ParseList((string?)await ExecuteAsync("CLUSTER", "NODES").ConfigureAwait(false) ?? string.Empty);
}
