using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;
using StackExchange.Redis.Configuration;

namespace RedisPoolKit;

/// <summary>Decides whether a socket may open to a node besides its budget: the node's breaker. Null when it may.</summary>
internal interface INodeGate
{
    /// <summary>Why no socket may open to <paramref name="node"/> now, or null; counts a held-back reconnect.</summary>
    RedisPoolCircuitState? Refuses(string node);

    /// <summary>The exception for a new connection to <paramref name="node"/> alone while its breaker is not closed (<paramref name="what"/> says what the pool did), or null.</summary>
    Exception? Refusal(string node, string what);
}

/// <summary>
/// The budget slots of one pool connection (one <see cref="ConnectionMultiplexer"/>), per node. StackExchange.Redis
/// opens one socket per node and connection type by itself (on connect, on discovering a cluster's nodes, on every
/// reconnect); each passes <see cref="BeforeSocketConnect"/> through the connection's <see cref="Tunnel"/> first,
/// which reserves one slot on that node or throws, so the socket never opens outside the budget.
/// </summary>
/// <remarks>
/// A slot is held per node and connection type for the life of the connection: a reconnect of the same socket reuses
/// it, so the count is what the server sees at most (a socket being replaced is never counted twice, and never opened
/// twice). The factory reserves the first slots before connecting (<see cref="TryPrepay"/>) on the pool's default node
/// and on every node the pool already knows, so a full node still fails a new connection at once, as against a
/// standalone server; the tunnel then takes those prepaid slots. <see cref="Close"/> gives everything back once the connection's sockets are gone.
/// </remarks>
internal sealed class NodeSockets
{
    private readonly ConnectionBudget _budget;
    private readonly INodeGate? _gate;
    private readonly Action<string, string>? _refused;
    // StackExchange.Redis ends a connect a little after its ConnectTimeout.
    private static readonly TimeSpan s_reconnectSlack = TimeSpan.FromSeconds(1);
    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _standInWait;
    private readonly Lock _lock = new();
    private readonly HashSet<(string Node, ConnectionType Type)> _held = [];
    // Held sockets whose reconnect went through the tunnel and has not been reported connected yet.
    private readonly HashSet<(string Node, ConnectionType Type)> _connecting = [];
    // When each held socket last went through the tunnel to reconnect.
    private readonly Dictionary<(string Node, ConnectionType Type), long> _lastReconnect = [];
    private readonly Func<EndPoint, Task<bool>>? _reconnectFailed;

    private readonly HashSet<(string Node, ConnectionType Type)> _down = [];
    private readonly Dictionary<string, int> _prepaid = new(StringComparer.OrdinalIgnoreCase);
    private bool _closed;

    public NodeSockets(
        ConnectionBudget budget,
        SocketRole role,
        INodeGate? gate = null,
        Action<string, string>? refused = null,
        TimeProvider? timeProvider = null,
        TimeSpan? standInWait = null,
        Func<EndPoint, Task<bool>>? reconnectFailed = null)
    {
        _reconnectFailed = reconnectFailed;
        _budget = budget;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _standInWait = standInWait ?? TimeSpan.FromSeconds(5);
        Role = role;
        _gate = gate;
        _refused = refused;
    }

    public SocketRole Role { get; }

    /// <summary>The nodes this connection holds a slot on now.</summary>
    public IReadOnlyList<string> Nodes
    {
        get
        {
            lock (_lock)
            {
                return [.. _held.Select(h => h.Node).Distinct(StringComparer.OrdinalIgnoreCase)];
            }
        }
    }

    /// <summary>
    /// Reserves <paramref name="slots"/> on each of <paramref name="nodes"/> before the connection connects: all, or
    /// none and the first node that is full in <paramref name="full"/>.
    /// </summary>
    public bool TryPrepay(IEnumerable<string> nodes, int slots, [NotNullWhen(false)] out string? full)
    {
        var reserved = new List<string>();
        foreach (var node in nodes.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (!_budget.TryReserve(node, Role, slots))
            {
                foreach (var done in reserved)
                {
                    _budget.Release(done, Role, slots);
                }

                full = node;
                return false;
            }

            reserved.Add(node);
        }

        lock (_lock)
        {
            foreach (var node in reserved)
            {
                _prepaid[node] = slots;
            }
        }

        full = null;
        return true;
    }

    /// <summary>The last node the tunnel refused a socket to, with why, for the message of a connect that then timed out.</summary>
    public string? LastRefusal { get; private set; }

    /// <summary>
    /// Called by the tunnel before StackExchange.Redis connects a socket of <paramref name="type"/> to
    /// <paramref name="endPoint"/>: holds a slot for it, or throws so that the socket is never opened.
    /// </summary>
    /// <remarks>
    /// A reconnect never opens beside a probe that stands in for it: while one does
    /// (<see cref="ConnectionBudget.NodeBudget.TakeProbeSlot"/>) it waits for the probe's socket to close. A reconnect
    /// that follows a reconnect which never connected (StackExchange.Redis reports only the first loss) is itself the
    /// sign of a failure: it waits while the breaker classifies that failure with a probe standing in for it, and goes
    /// on only if the breaker is still closed. Either wait lasts at most <c>ConnectTimeout</c>.
    /// </remarks>
    public async ValueTask BeforeSocketConnectAsync(EndPoint endPoint, ConnectionType type, CancellationToken cancellationToken)
    {
        var started = _timeProvider.GetTimestamp();
        while (TryConnect(endPoint, type) is { } wait)
        {
            var left = _standInWait - _timeProvider.GetElapsedTime(started);
            var node = RedisConnectionFactory.Format(endPoint);
            try
            {
                if (left <= TimeSpan.Zero)
                {
                    throw new TimeoutException();
                }

                await wait.WaitAsync(left, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                LastRefusal = $"{node}: a probe stood in for this socket for longer than 'ConnectTimeout'";
                throw new RedisPoolException($"No socket to {node}: a probe stands in for it and did not finish within 'ConnectTimeout' ({RedisPoolOptionsValidator.Format(_standInWait)}); it reconnects on its next attempt.");
            }

            if (wait is Task<bool> { Result: false })
            {
                LastRefusal = $"{node}: its max-clients breaker opened on the failed reconnect";
                throw new RedisPoolCircuitOpenException($"No socket to {node}: its max-clients breaker opened on the failed reconnect.", TimeSpan.Zero, null);
            }
        }
    }

    /// <summary>
    /// <see cref="BeforeSocketConnectAsync"/> without the wait: holds a slot and returns null, throws, or returns what to
    /// wait for before asking again (a probe standing in, or the classification of a failed reconnect, true when the
    /// socket may still connect).
    /// </summary>
    public Task? TryConnect(EndPoint endPoint, ConnectionType type)
    {
        var node = RedisConnectionFactory.Format(endPoint);
        if (_gate?.Refuses(node) is { } state)
        {
            lock (_lock)
            {
                // A held socket asking to reconnect is closed, and stays closed until the breaker lets it through: the
                // breaker's probe may stand in for it.
                MarkDownLocked(node, type);
            }

            LastRefusal = $"{node}: its max-clients breaker is {state}";
            throw new RedisPoolCircuitOpenException($"No socket to {node}: its max-clients breaker is {state}.", TimeSpan.Zero, null);
        }

        lock (_lock)
        {
            if (_closed)
            {
                throw new ObjectDisposedException(nameof(NodeSockets), $"The connection is closed; no socket to {node}.");
            }

            if (_held.Contains((node, type)))
            {
                // The last reconnect never connected: it failed, unreported. Classified before this one goes, with the
                // probe standing in for it.
                if (_reconnectFailed is not null && _connecting.Remove((node, type)))
                {
                    MarkDownLocked(node, type);
                    return _reconnectFailed(endPoint);
                }

                if (_down.Contains((node, type)))
                {
                    if (!_budget.Node(node).TryMarkUp(out var standIn))
                    {
                        return standIn;
                    }

                    _down.Remove((node, type));
                }

                _connecting.Add((node, type));
                _lastReconnect[(node, type)] = _timeProvider.GetTimestamp();
                return null;
            }

            if (_prepaid.TryGetValue(node, out var prepaid) && prepaid > 0)
            {
                _prepaid[node] = prepaid - 1;
                _held.Add((node, type));
                return null;
            }

            if (_budget.TryReserve(node, Role))
            {
                _held.Add((node, type));
                return null;
            }
        }

        var budget = _budget.Node(node).Describe();
        LastRefusal = $"{node}: no budget left there ({budget})";
        _refused?.Invoke(node, budget);
        throw new RedisPoolExhaustedException(
            RedisPoolExhaustedReason.BudgetExhausted,
            $"No {RedisClientNames.RolePrefix(Role)} socket to {node}: {budget}. Raise 'MaxConnections' (currently {_budget.Max}).");
    }

    /// <summary>For tests: <see cref="TryConnect"/> where nothing is waited for.</summary>
    internal void BeforeSocketConnect(EndPoint endPoint, ConnectionType type)
    {
        if (TryConnect(endPoint, type) is not null)
        {
            throw new InvalidOperationException("This socket must wait: use BeforeSocketConnectAsync.");
        }
    }

    private void MarkDownLocked(string node, ConnectionType type)
    {
        _connecting.Remove((node, type));
        if (!_closed && _held.Contains((node, type)) && _down.Add((node, type)))
        {
            _budget.Node(node).MarkDown();
        }
    }

    /// <summary>
    /// Follows the connection's sockets: one StackExchange.Redis lost keeps its slot (it reconnects in it) and counts as
    /// <see cref="ConnectionBudget.NodeBudget.Down"/> until it connects again, so a breaker's probe may stand in for it.
    /// <paramref name="restored"/> runs when a socket is connected again.
    /// </summary>
    public void Watch(ConnectionMultiplexer multiplexer, Action<EndPoint>? restored = null)
    {
        multiplexer.ConnectionFailed += (_, args) =>
        {
            if (args.FailureType != ConnectionFailureType.ConnectionDisposed && args.EndPoint is { } endPoint)
            {
                OnSocketLost(endPoint, args.ConnectionType, () => args.ConnectionType == ConnectionType.Interactive && IsConnected(multiplexer, endPoint));
            }
        };
        multiplexer.ConnectionRestored += (_, args) =>
        {
            if (args.EndPoint is { } endPoint)
            {
                OnSocketRestored(endPoint, args.ConnectionType);
                restored?.Invoke(endPoint);
            }
        };
    }

    /// <summary>
    /// A socket of <paramref name="type"/> to <paramref name="endPoint"/> is closed; its slot stays held for its reconnect
    /// and counts as down. StackExchange.Redis starts the first reconnect (through the tunnel) before it reports the
    /// loss: a loss reported while that reconnect is under way is the socket it replaces, and changes nothing.
    /// </summary>
    /// <remarks>
    /// Its events are raised in no fixed order, and a reconnect that fails is not reported at all: a loss reported
    /// within <c>ConnectTimeout</c> of a reconnect, or when the socket is connected again (<paramref name="connectedAgain"/>,
    /// asked under the lock), changes nothing. A lost socket not counted down is not probed; its next reconnect, if the
    /// last one never connected, is classified in the tunnel instead.
    /// </remarks>
    public void OnSocketLost(EndPoint endPoint, ConnectionType type, Func<bool>? connectedAgain = null)
    {
        var node = RedisConnectionFactory.Format(endPoint);
        lock (_lock)
        {
            // A reconnect under way (it lasts at most ConnectTimeout) may be the socket the loss is reported after.
            if (_lastReconnect.TryGetValue((node, type), out var last) && _timeProvider.GetElapsedTime(last) < _standInWait + s_reconnectSlack)
            {
                return;
            }

            if (connectedAgain?.Invoke() != true)
            {
                MarkDownLocked(node, type);
            }
        }
    }

    private static bool IsConnected(ConnectionMultiplexer multiplexer, EndPoint endPoint)
    {
        try
        {
            return multiplexer.GetServer(endPoint).IsConnected;
        }
        catch (Exception ex) when (ex is ArgumentException or ObjectDisposedException or RedisException)
        {
            return false;
        }
    }

    /// <summary>The socket of <paramref name="type"/> to <paramref name="endPoint"/> is connected again.</summary>
    public void OnSocketRestored(EndPoint endPoint, ConnectionType type)
    {
        var node = RedisConnectionFactory.Format(endPoint);
        lock (_lock)
        {
            _connecting.Remove((node, type));
            if (!_closed && _down.Remove((node, type)))
            {
                _budget.Node(node).MarkUp();
            }
        }
    }

    /// <summary>Gives back every slot this connection holds or prepaid; later connects are refused. Idempotent.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            foreach (var (node, _) in _down)
            {
                _budget.Node(node).MarkUp();
            }

            _down.Clear();
            foreach (var (node, _) in _held)
            {
                _budget.Release(node, Role);
            }

            _held.Clear();
            _connecting.Clear();
            _lastReconnect.Clear();
            foreach (var (node, prepaid) in _prepaid)
            {
                if (prepaid > 0)
                {
                    _budget.Release(node, Role, prepaid);
                }
            }

            _prepaid.Clear();
        }
    }
}

/// <summary>
/// The <see cref="Tunnel"/> set on every multiplexer of the pool: reserves the budget slot before each socket, then
/// does what the application's own tunnel (from <see cref="RedisPoolOptions.ConfigureOptions"/>) does, if any.
/// </summary>
internal sealed class NodeBudgetTunnel(NodeSockets sockets, Tunnel? inner) : Tunnel
{
    public override ValueTask<EndPoint?> GetSocketConnectEndpointAsync(EndPoint endpoint, CancellationToken cancellationToken) =>
        inner is null ? base.GetSocketConnectEndpointAsync(endpoint, cancellationToken) : inner.GetSocketConnectEndpointAsync(endpoint, cancellationToken);

    public override async ValueTask BeforeSocketConnectAsync(EndPoint endPoint, ConnectionType connectionType, Socket? socket, CancellationToken cancellationToken)
    {
        await sockets.BeforeSocketConnectAsync(endPoint, connectionType, cancellationToken).ConfigureAwait(false);
        if (inner is not null)
        {
            await inner.BeforeSocketConnectAsync(endPoint, connectionType, socket, cancellationToken).ConfigureAwait(false);
        }
    }

    // Experimental in StackExchange.Redis: forwarded so an application's tunnel that supplies its own transport keeps working.
#pragma warning disable SER009
    public override async ValueTask<RESPite.Transports.DuplexTransport?> ConnectTransportAsync(EndPoint endpoint, ConnectionType connectionType, TlsOptions tls, CancellationToken cancellationToken)
    {
        if (inner is null)
        {
            return await base.ConnectTransportAsync(endpoint, connectionType, tls, cancellationToken).ConfigureAwait(false);
        }

        // A transport of the application's tunnel opens no socket of ours, but still takes a connection on the node.
        await sockets.BeforeSocketConnectAsync(endpoint, connectionType, cancellationToken).ConfigureAwait(false);
        return await inner.ConnectTransportAsync(endpoint, connectionType, tls, cancellationToken).ConfigureAwait(false);
    }
#pragma warning restore SER009

    public override ValueTask<Stream?> BeforeAuthenticateAsync(EndPoint endpoint, ConnectionType connectionType, Socket? socket, CancellationToken cancellationToken) =>
        inner is null ? base.BeforeAuthenticateAsync(endpoint, connectionType, socket, cancellationToken) : inner.BeforeAuthenticateAsync(endpoint, connectionType, socket, cancellationToken);
}
