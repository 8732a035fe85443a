using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The lease sockets of a pool that talks to a Redis Cluster: one <see cref="LeasePool"/> per master, made the first
/// time a key routes to it, each with its own <see cref="RedisPoolLeaseOptions.MaxLeases"/>. A lease is one socket on
/// the master that owns its key's slot.
/// </summary>
internal sealed class ClusterLeases : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, LeasePool> _pools = new(StringComparer.Ordinal);
    private readonly Func<EndPoint, ClusterLeases, LeasePool> _create;
    private readonly Func<RedisKey, int> _hashSlot;
    private readonly Lock _createLock = new();
    private bool _disposed;

    public ClusterLeases(Func<EndPoint, ClusterLeases, LeasePool> create, Func<RedisKey, int> hashSlot)
    {
        _create = create;
        _hashSlot = hashSlot;
    }

    /// <summary>The lease pools made so far, one per master a lease went to.</summary>
    public ICollection<LeasePool> Pools => _pools.Values;

    /// <summary>The lease pool of <paramref name="node"/>, made on first use.</summary>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public LeasePool For(EndPoint node)
    {
        var name = RedisConnectionFactory.Format(node);
        if (_pools.TryGetValue(name, out var pool))
        {
            return pool;
        }

        // Under a lock: a pool made twice would start a housekeeper nobody disposes.
        lock (_createLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_pools.TryGetValue(name, out pool))
            {
                pool = _create(node, this);
                _pools[name] = pool;
            }

            return pool;
        }
    }

    /// <summary>
    /// Throws before anything is sent when <paramref name="keys"/> hash to more than one slot: the cluster would refuse
    /// the command with <c>CROSSSLOT</c>, or, for keys on different masters, no one socket could run it.
    /// </summary>
    public void ThrowIfCrossSlot(string command, ReadOnlySpan<RedisKey> keys)
    {
        if (keys.Length < 2)
        {
            return;
        }

        var first = _hashSlot(keys[0]);
        for (var i = 1; i < keys.Length; i++)
        {
            var slot = _hashSlot(keys[i]);
            if (slot != first)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"{command} names keys of different hash slots: '{keys[0]}' is in slot {first}, '{keys[i]}' in slot {slot}. In a Redis Cluster a lease is one socket on one master, and one command may only name keys of one slot: give the keys a common hash tag, the part in braces that alone is hashed (for example '{{orders}}:new' and '{{orders}}:retry')."),
                    nameof(keys));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_createLock)
        {
            _disposed = true;
        }

        await Task.WhenAll(_pools.Values.Select(p => p.DisposeAsync().AsTask())).ConfigureAwait(false);
    }
}
