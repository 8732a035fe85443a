using System.Collections.Concurrent;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The nodes the pool talks to and what each is, learnt from StackExchange.Redis: the servers of every multiplexer
/// the pool owns, refreshed when one connects and on <see cref="ConnectionMultiplexer.ConfigurationChanged"/> and
/// <see cref="ConnectionMultiplexer.HashSlotMoved"/>. Against a standalone server it holds one node.
/// </summary>
internal sealed class RedisTopology
{
    private const int KindUnknown = 0;
    private const int KindStandalone = 1;
    private const int KindCluster = 2;

    private readonly ConcurrentDictionary<string, RedisPoolNodeRole> _roles = new(StringComparer.OrdinalIgnoreCase);
    private int _kind;

    /// <summary>True once a socket of the pool found a Redis Cluster: budget, breaker and leases then act per node.</summary>
    public bool IsCluster => Volatile.Read(ref _kind) == KindCluster;

    /// <summary>Whether the servers are a Redis Cluster, once a socket of the pool has said; null before.</summary>
    public bool? Cluster => Volatile.Read(ref _kind) switch
    {
        KindCluster => true,
        KindStandalone => false,
        _ => null,
    };

    /// <summary>
    /// After <see cref="Refresh(ConnectionMultiplexer)"/> read a multiplexer's servers: it connected, or the cluster's configuration changed, or
    /// (with the slot and its new owner) StackExchange.Redis followed a MOVED reply.
    /// </summary>
    public event Action<ConnectionMultiplexer, HashSlotMovedEventArgs?>? Refreshed;

    /// <summary>The known nodes and their roles.</summary>
    public IReadOnlyDictionary<string, RedisPoolNodeRole> Roles => _roles;

    /// <summary>Keeps what a socket said the servers are; a cluster, once found, stays one.</summary>
    public void Learn(bool cluster)
    {
        if (cluster)
        {
            Volatile.Write(ref _kind, KindCluster);
        }
        else
        {
            Interlocked.CompareExchange(ref _kind, KindStandalone, KindUnknown);
        }
    }

    public void Observe(ConnectionMultiplexer multiplexer)
    {
        multiplexer.ConfigurationChanged += OnChanged;
        multiplexer.HashSlotMoved += OnSlotMoved;
        Refresh(multiplexer);
    }

    public void Forget(ConnectionMultiplexer multiplexer)
    {
        multiplexer.ConfigurationChanged -= OnChanged;
        multiplexer.HashSlotMoved -= OnSlotMoved;
    }

    /// <summary>Drops <paramref name="node"/> ("host:port"): under Sentinel, a master the pool has left, which is no primary of the pool's any more.</summary>
    public void ForgetNode(string node) => _roles.TryRemove(node, out _);

    public void Refresh(ConnectionMultiplexer multiplexer) => Refresh(multiplexer, moved: null);

    private void Refresh(ConnectionMultiplexer multiplexer, HashSlotMovedEventArgs? moved)
    {
        IServer[] servers;
        try
        {
            servers = multiplexer.GetServers();
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        foreach (var server in servers)
        {
            var node = RedisConnectionFactory.Format(server.EndPoint);
            // A node that is down keeps the role it was last seen with.
            if (server.IsConnected)
            {
                _roles[node] = server.IsReplica ? RedisPoolNodeRole.Replica : RedisPoolNodeRole.Primary;
            }
            else
            {
                _roles.TryAdd(node, RedisPoolNodeRole.Unknown);
            }

            if (server.IsConnected && server.ServerType == ServerType.Cluster)
            {
                Learn(cluster: true);
            }
        }

        Refreshed?.Invoke(multiplexer, moved);
    }

    private void OnChanged(object? sender, EndPointEventArgs args)
    {
        if (sender is ConnectionMultiplexer multiplexer)
        {
            Refresh(multiplexer);
        }
    }

    private void OnSlotMoved(object? sender, HashSlotMovedEventArgs args)
    {
        if (sender is ConnectionMultiplexer multiplexer)
        {
            Refresh(multiplexer, args);
        }
    }
}
