using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>A lease socket opened by <see cref="RedisConnectionFactory"/>: the budget slot is given back when it is disposed.</summary>
internal sealed class FactoryLeaseConnection : ILeaseConnection
{
    private readonly PooledConnection _connection;
    private readonly TimeSpan _pingTimeout;
    private readonly TimeProvider _timeProvider;

    private FactoryLeaseConnection(PooledConnection connection, long clientId, TimeSpan pingTimeout, TimeProvider timeProvider)
    {
        _connection = connection;
        ClientId = clientId;
        _pingTimeout = pingTimeout;
        _timeProvider = timeProvider;
        Database = connection.Multiplexer.GetDatabase();
    }

    public IDatabase Database { get; }

    public string Name => _connection.ClientName;

    public long ClientId { get; }

    public bool IsConnected => _connection.IsConnected;

    public string? Node => _connection.Node;

    public bool HasPendingReplies => _connection.Multiplexer.GetCounters().TotalOutstanding > 0;

    /// <summary>
    /// Opens a lease socket and fetches its <c>CLIENT ID</c> once, the target of <c>CLIENT UNBLOCK</c>. Where the
    /// server does not permit <c>CLIENT ID</c> the socket is leased without one (id 0: its blocking commands cannot be
    /// unblocked, and the pool says so once); a socket that fails otherwise is closed.
    /// </summary>
    /// <param name="factory">Opens the socket.</param>
    /// <param name="options">The pool's options.</param>
    /// <param name="timeProvider">Bounds the <c>CLIENT ID</c> read.</param>
    /// <param name="index">The socket's index, part of its client name.</param>
    /// <param name="node">The cluster master to connect to alone; <see langword="null"/> outside a cluster.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    public static async ValueTask<ILeaseConnection> ConnectAsync(RedisConnectionFactory factory, RedisPoolOptions options, TimeProvider timeProvider, int index, System.Net.EndPoint? node, CancellationToken cancellationToken)
    {
        var connection = node is null
            ? await factory.ConnectAsync(SocketRole.Lease, index, cancellationToken).ConfigureAwait(false)
            : await factory.ConnectLeaseAsync(node, index, cancellationToken).ConfigureAwait(false);
        try
        {
            if (node is null && IsCluster(connection.Multiplexer))
            {
                throw new InvalidOperationException(KeylessInCluster(options.Name));
            }

            var clientId = 0L;
            if (factory.Permissions.Unblock)
            {
                try
                {
                    var reply = await connection.Multiplexer.GetDatabase().ExecuteAsync("CLIENT", "ID")
                        .WaitAsync(options.ConnectTimeout, timeProvider, cancellationToken).ConfigureAwait(false);
                    clientId = (long)reply;
                }
                catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
                {
                    factory.Permissions.ClientIdRefused(ex);
                }
            }

            return new FactoryLeaseConnection(connection, clientId, options.ConnectTimeout, timeProvider);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The message of a keyless lease asked of a pool that talks to a Redis Cluster.</summary>
    public static string KeylessInCluster(string poolName) =>
        $"Pool '{poolName}' talks to a Redis Cluster, where a lease is one socket on the master that owns a key's slot: lease with LeaseAsync(RedisKey key, CancellationToken), naming a key the lease's commands will use. LeaseAsync() without a key serves a standalone server or a Sentinel-managed master.";

    public static bool IsCluster(IConnectionMultiplexer multiplexer)
    {
        foreach (var server in multiplexer.GetServers())
        {
            if (server.ServerType == ServerType.Cluster)
            {
                return true;
            }
        }

        return false;
    }

    public async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Database.PingAsync().WaitAsync(_pingTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
