using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// One connection the pool owns: a single-socket <see cref="ConnectionMultiplexer"/> and the budget slots it
/// holds. Disposing it closes the socket and gives the slots back, exactly once.
/// </summary>
internal sealed class PooledConnection : IAsyncDisposable, IDisposable
{
    private readonly ConnectionBudget _budget;

    // Where the slots without NodeSockets were reserved: the default node may move (Sentinel) before they come back.
    private readonly string _reservedOn;
    private int _disposed;

    public PooledConnection(ConnectionMultiplexer multiplexer, ConnectionBudget budget, SocketRole role, int index, int slots, string clientName, long createdTimestamp, NodeSockets? sockets = null)
    {
        Sockets = sockets;
        Multiplexer = multiplexer;
        _budget = budget;
        _reservedOn = budget.DefaultNode;
        Role = role;
        Index = index;
        Slots = slots;
        ClientName = clientName;
        CreatedTimestamp = createdTimestamp;
    }

    public ConnectionMultiplexer Multiplexer { get; }

    /// <summary>The server this socket was opened to ("host:port"), when the pool knows it.</summary>
    public string? Node { get; init; }
    /// <summary>The slots this connection holds per node, when the factory opened it (null: <see cref="Slots"/> on the budget's default node).</summary>
    public NodeSockets? Sockets { get; }

    public SocketRole Role { get; }

    public int Index { get; }

    public int Slots { get; }

    public string ClientName { get; }

    /// <summary><see cref="TimeProvider.GetTimestamp"/> when the socket was opened.</summary>
    public long CreatedTimestamp { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public bool IsConnected => !IsDisposed && Multiplexer.IsConnected;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await Multiplexer.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
        }
        finally
        {
            Multiplexer.Dispose();
            ReleaseSlots();
        }
    }

    private void ReleaseSlots()
    {
        if (Sockets is { } sockets)
        {
            sockets.Close();
        }
        else
        {
            _budget.Release(_reservedOn, Role, Slots);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            Multiplexer.Dispose();
        }
        finally
        {
            ReleaseSlots();
        }
    }
}
