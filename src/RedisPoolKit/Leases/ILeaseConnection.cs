using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>One exclusive socket as the <see cref="LeasePool"/> sees it; an abstraction so the pool can be tested without a server.</summary>
internal interface ILeaseConnection : IAsyncDisposable
{
    /// <summary>The database bound to this socket alone.</summary>
    IDatabase Database { get; }

    /// <summary>The client name (<c>CLIENT SETNAME</c>), for logs.</summary>
    string Name { get; }

    /// <summary>The server's <c>CLIENT ID</c> of this socket, the target of <c>CLIENT UNBLOCK</c>.</summary>
    long ClientId { get; }

    bool IsConnected { get; }

    /// <summary>The server the socket is connected to ("host:port"), or null when unknown.</summary>
    string? Node => null;

    /// <summary>True while a command sent on the socket has not had its reply yet: such a socket must not be reused.</summary>
    bool HasPendingReplies { get; }

    /// <summary>A bounded <c>PING</c>; false (never an exception) when the socket does not answer.</summary>
    ValueTask<bool> PingAsync(CancellationToken cancellationToken);
}

/// <summary>Opens the lease socket with the given index (part of its client name).</summary>
internal delegate ValueTask<ILeaseConnection> LeaseConnector(int index, CancellationToken cancellationToken);
