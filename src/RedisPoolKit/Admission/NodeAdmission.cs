using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// In a Redis Cluster, one admission limiter per master, each with its own adaptive in-flight limit sampled from the
/// commands for that master only: a slow master holds back its own commands and no others. A keyed command enters
/// its slot owner's limiter first and the pool's (<c>MaxInFlight</c>, the ceiling over all nodes) second.
/// </summary>
/// <remarks>
/// Finding the limiter is the key's hash slot (CRC16, computed by StackExchange.Redis) and one read of a slot table,
/// rebuilt from the cluster's configuration when the topology changes. A slot no known master serves (the table is
/// not built yet, or the slot is unassigned) maps to no limiter: its command is bounded by the pool's limit alone.
/// </remarks>
internal sealed class NodeAdmission
{
    private const int SlotCount = 16384;

    private readonly Func<string, AdmissionLimiter> _create;
    private readonly Lock _lock = new();
    private Dictionary<string, AdmissionLimiter> _limiters = new(StringComparer.OrdinalIgnoreCase);
    private AdmissionLimiter?[]? _bySlot;
    private Func<RedisKey, int>? _hashSlot;

    /// <summary>
    /// A master's ceiling: <paramref name="maxInFlight"/> less one <paramref name="floor"/>, kept for the other masters.
    /// A master that stops answering teaches its limit nothing (no command completes), so until its commands time out
    /// it can fill its ceiling; the pool's permits it cannot reach keep the other masters serving meanwhile.
    /// </summary>
    public static int CeilingFor(int maxInFlight, int floor) => Math.Max(floor, maxInFlight - floor);

    /// <summary>
    /// A master's floor and ceiling under the pool's <paramref name="maxInFlight"/>: the floor is 64, or half of
    /// <paramref name="maxInFlight"/> when that is less, so that a master at its ceiling leaves at least a floor of the
    /// pool's permits to the others (with <paramref name="maxInFlight"/> 1 there is no permit to leave).
    /// </summary>
    public static (int Floor, int Ceiling) LimitsFor(int maxInFlight)
    {
        var floor = Math.Min(RedisPoolDefaults.AdaptiveInFlightFloor, Math.Max(1, maxInFlight / 2));
        return (floor, CeilingFor(maxInFlight, floor));
    }

    /// <summary>Per-node limiters made by <paramref name="create"/> from the node's name ("host:port").</summary>
    public NodeAdmission(Func<string, AdmissionLimiter> create) => _create = create;

    /// <summary>True once a slot table is known: keyed commands are then admitted per node.</summary>
    public bool IsActive => Volatile.Read(ref _bySlot) is not null;

    /// <summary>The limiter of every master seen so far, by node.</summary>
    public IReadOnlyDictionary<string, AdmissionLimiter> Limiters => Volatile.Read(ref _limiters);

    /// <summary>The limiter of the master that serves <paramref name="key"/>'s slot, or null (no key, or no known owner).</summary>
    public AdmissionLimiter? For(in RedisKey key)
    {
        var slots = Volatile.Read(ref _bySlot);
        if (slots is null || _hashSlot is not { } hashSlot)
        {
            return null;
        }

        // A null key (a multi-key command given none) has no slot: -1.
        var slot = hashSlot(key);
        return (uint)slot < SlotCount ? slots[slot] : null;
    }

    /// <summary>
    /// Points <paramref name="slot"/> at <paramref name="owner"/>'s limiter in place; false when there is no table yet or
    /// the owner has no limiter (a new master: rebuild the table instead).
    /// </summary>
    public bool Move(int slot, EndPoint owner)
    {
        var slots = Volatile.Read(ref _bySlot);
        if (slots is null || (uint)slot >= SlotCount || !Limiters.TryGetValue(RedisConnectionFactory.Format(owner), out var limiter))
        {
            return false;
        }

        // One reference write: readers see the old owner or the new one.
        Volatile.Write(ref slots[slot], limiter);
        return true;
    }

    /// <summary>Rebuilds the slot table from <paramref name="multiplexer"/>'s view of the cluster; false when it has none yet.</summary>
    public bool Refresh(ConnectionMultiplexer multiplexer)
    {
        ClusterConfiguration? configuration = null;
        try
        {
            foreach (var server in multiplexer.GetServers())
            {
                if (server.IsConnected && server.ServerType == ServerType.Cluster && server.ClusterConfiguration is { } seen)
                {
                    configuration = seen;
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is RedisException or InvalidOperationException or ObjectDisposedException or NotSupportedException)
        {
            return false;
        }

        if (configuration is null)
        {
            return false;
        }

        var ranges = new List<(string Node, int From, int To)>();
        foreach (var node in configuration.Nodes)
        {
            if (node.IsReplica || node.EndPoint is null)
            {
                continue;
            }

            var name = RedisConnectionFactory.Format(node.EndPoint);
            foreach (var range in node.Slots)
            {
                ranges.Add((name, range.From, range.To));
            }
        }

        if (ranges.Count == 0)
        {
            return false;
        }

        Assign(ranges, multiplexer.HashSlot);
        return true;
    }

    /// <summary>Sets the slot table: each range's slots to its node's limiter (created on first sight); <paramref name="hashSlot"/> maps a key to its slot.</summary>
    internal void Assign(IEnumerable<(string Node, int From, int To)> ranges, Func<RedisKey, int> hashSlot)
    {
        lock (_lock)
        {
            var limiters = _limiters;
            var table = new AdmissionLimiter?[SlotCount];
            foreach (var (node, from, to) in ranges)
            {
                if (!limiters.TryGetValue(node, out var limiter))
                {
                    limiter = _create(node);

                    // Copy on write: readers never lock.
                    limiters = new Dictionary<string, AdmissionLimiter>(limiters, StringComparer.OrdinalIgnoreCase) { [node] = limiter };
                }

                for (var slot = Math.Max(0, from); slot <= Math.Min(SlotCount - 1, to); slot++)
                {
                    table[slot] = limiter;
                }
            }

            Volatile.Write(ref _limiters, limiters);
            _hashSlot = hashSlot;
            Volatile.Write(ref _bySlot, table);
        }
    }

    /// <summary>Stops every node's limiter: queued callers get <see cref="ObjectDisposedException"/>.</summary>
    public void Close()
    {
        foreach (var limiter in Limiters.Values)
        {
            limiter.Close();
        }
    }
}
