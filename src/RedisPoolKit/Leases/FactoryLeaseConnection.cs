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
    public static async ValueTask<ILeaseConnection> ConnectAsync(RedisConnectionFactory factory, RedisPoolOptions options, TimeProvider timeProvider, int index, CancellationToken cancellationToken)
    {
        var connection = await factory.ConnectAsync(SocketRole.Lease, index, cancellationToken).ConfigureAwait(false);
        try
        {
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
