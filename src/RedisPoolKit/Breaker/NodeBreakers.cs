using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// One max-clients breaker per node of a Redis Cluster. A full node opens its own breaker only: its sockets are
/// refused in the connections' tunnels (StackExchange.Redis's reconnects included), so it sees one raw probe per
/// break interval, and a command for a slot it serves fails at once with <see cref="RedisPoolCircuitOpenException"/>
/// naming it, while the other nodes serve as before.
/// </summary>
/// <remarks>
/// Against a standalone server or Sentinel the pool's own breaker does all this and this class holds no breaker: it
/// creates one for a node only when a cluster node's socket fails. While every node's breaker is closed, each
/// question here is one volatile read.
/// </remarks>
internal sealed class NodeBreakers : INodeGate, IAsyncDisposable
{
    private readonly Func<EndPoint, MaxClientsBreaker> _create;
    private readonly Lock _lock = new();
    private Dictionary<string, MaxClientsBreaker> _breakers = new(StringComparer.OrdinalIgnoreCase);
    private int _notClosed;
    private bool _disposed;

    public NodeBreakers(Func<EndPoint, MaxClientsBreaker> create) => _create = create;

    /// <summary>A node's breaker changed state: the node and the transition.</summary>
    public event Action<string, RedisPoolCircuitStateChangedEventArgs>? StateChanged;

    /// <summary>True while some node's breaker is open or half-open.</summary>
    public bool AnyNotClosed => Volatile.Read(ref _notClosed) > 0;

    /// <summary>The breaker of <paramref name="node"/>, or null when none was needed yet (it is closed).</summary>
    public MaxClientsBreaker? Find(string node) => Volatile.Read(ref _breakers).GetValueOrDefault(node);

    public RedisPoolCircuitState StateOf(string node) => Find(node)?.State ?? RedisPoolCircuitState.Closed;

    /// <summary>The breaker of the node at <paramref name="endPoint"/>, created closed on first use.</summary>
    public MaxClientsBreaker For(EndPoint endPoint)
    {
        var node = RedisConnectionFactory.Format(endPoint);
        if (Find(node) is { } existing)
        {
            return existing;
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_breakers.TryGetValue(node, out existing))
            {
                return existing;
            }

            var breaker = _create(endPoint);
            breaker.StateChanged += (_, args) => OnStateChanged(node, args);
            // Copy on write: readers never lock.
            Volatile.Write(ref _breakers, new Dictionary<string, MaxClientsBreaker>(_breakers, StringComparer.OrdinalIgnoreCase) { [node] = breaker });
            return breaker;
        }
    }

    /// <summary>For the tunnel: a socket to <paramref name="node"/> is held back while its breaker is not closed.</summary>
    public RedisPoolCircuitState? Refuses(string node)
    {
        if (!AnyNotClosed || Find(node) is not { } breaker || breaker.State == RedisPoolCircuitState.Closed)
        {
            return null;
        }

        breaker.NoteReconnectSuppressed();
        return breaker.State;
    }

    /// <inheritdoc />
    public Exception? Refusal(string node, string what) =>
        AnyNotClosed && Find(node) is { State: not RedisPoolCircuitState.Closed } breaker ? breaker.Refusal(what) : null;

    /// <summary>For <see cref="ConnectionMultiplexer.ConnectionFailed"/> of a cluster multiplexer: the failed node's breaker classifies it.</summary>
    public void OnConnectionFailed(ConnectionFailedEventArgs args)
    {
        if (args.EndPoint is { } endPoint && !_disposed)
        {
            For(endPoint).OnConnectionFailed(args);
        }
    }

    /// <summary>
    /// A command that failed for want of a connection, when the node it was for has its breaker open: the
    /// <see cref="RedisPoolCircuitOpenException"/> naming that node to throw instead. Null otherwise.
    /// </summary>
    public Exception? Translate(Exception failure)
    {
        if (!AnyNotClosed || failure is not RedisConnectionException)
        {
            return null;
        }

        var node = NodeOf(failure);
        if (node is null || Find(node) is not { } breaker)
        {
            return null;
        }

        return breaker.Refusal($"failed a command for a slot on node {node}: StackExchange.Redis had no connection to it (a command sent before the breaker opened waits up to its timeout; later ones fail before sending)");
    }

    /// <summary>The exception for a command on <paramref name="key"/> when its slot's node has its breaker open, else null.</summary>
    public Exception? RefusalFor(ConnectionMultiplexer multiplexer, in RedisKey key)
    {
        // The slot's owner as the cluster's configuration says (GetServer(key) answers some other node while the owner is down).
        EndPoint? endPoint = null;
        try
        {
            var slot = multiplexer.HashSlot(key);
            foreach (var server in multiplexer.GetServers())
            {
                if (server.IsConnected && server.ClusterConfiguration?.GetBySlot(slot) is { } owner)
                {
                    endPoint = owner.EndPoint;
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is RedisException or InvalidOperationException or ObjectDisposedException or NotSupportedException)
        {
            return null;
        }

        if (endPoint is null)
        {
            return null;
        }

        var node = RedisConnectionFactory.Format(endPoint);
        return Find(node) is { State: not RedisPoolCircuitState.Closed } breaker
            ? breaker.Refusal($"failed a command for a slot on node {node} at once, without sending it")
            : null;
    }

    private string? NodeOf(Exception failure)
    {
        // StackExchange.Redis names the server it chose for the command in the exception's data.
        if (failure.Data["redis-server"] is string server)
        {
            return server;
        }

        foreach (var node in Volatile.Read(ref _breakers).Keys)
        {
            if (failure.Message.Contains(node, StringComparison.OrdinalIgnoreCase))
            {
                return node;
            }
        }

        return null;
    }

    private void OnStateChanged(string node, RedisPoolCircuitStateChangedEventArgs args)
    {
        if (args.PreviousState == RedisPoolCircuitState.Closed && args.State != RedisPoolCircuitState.Closed)
        {
            Interlocked.Increment(ref _notClosed);
        }
        else if (args.PreviousState != RedisPoolCircuitState.Closed && args.State == RedisPoolCircuitState.Closed)
        {
            Interlocked.Decrement(ref _notClosed);
        }

        StateChanged?.Invoke(node, args);
    }

    public async ValueTask DisposeAsync()
    {
        Dictionary<string, MaxClientsBreaker> breakers;
        lock (_lock)
        {
            _disposed = true;
            breakers = _breakers;
        }

        foreach (var breaker in breakers.Values)
        {
            await breaker.DisposeAsync().ConfigureAwait(false);
        }
    }
}
