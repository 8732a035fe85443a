using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace RedisPoolKit;

/// <summary>
/// The hard cap on the sockets one pool holds per server node. Every multiplexer and lease socket reserves a slot on
/// the node it connects to first and returns it when closed, and so does the breaker's half-open probe in every
/// topology (<see cref="NodeBudget.TakeProbeSlot"/>); each node has its own count, capped at <see cref="Max"/>.
/// </summary>
/// <remarks>
/// A node is named by its endpoint as <see cref="RedisConnectionFactory.Format"/> writes it ("host:port"). Against a
/// standalone server every socket goes to one node, the <see cref="DefaultNode"/>; the overloads without a node
/// reserve there. Under Sentinel the default node is the master, and moves with it (<see cref="MoveDefault"/>); each
/// sentinel socket reserves on its sentinel, and those sockets are left out of the pool-wide figures (<see cref="Used"/>,
/// <see cref="UsedBy"/>, <see cref="Describe"/>), which speak of the servers that carry commands. In a cluster a multiplexer's sockets reserve on each node they connect to (through the
/// connection's tunnel, see <see cref="NodeSockets"/>). A CAS loop per node keeps each cap exact under any race.
/// </remarks>
internal sealed class ConnectionBudget
{
    private readonly ConcurrentDictionary<string, NodeBudget> _nodes = new(StringComparer.OrdinalIgnoreCase);
    private NodeBudget _default;
    private int _limit;

    public ConnectionBudget(int max, string defaultNode = "default")
    {
        Max = max;
        _limit = max;
        _default = Node(defaultNode);
    }

    /// <summary>The configured cap per node (<see cref="RedisPoolOptions.MaxConnections"/>).</summary>
    public int Max { get; }

    /// <summary>The cap per node new reservations are held to now: <see cref="Max"/>, or less while a fleet share lowers it.</summary>
    public int Limit => Volatile.Read(ref _limit);

    /// <summary>
    /// Lowers (or raises back) the cap new sockets are held to on every node, within 1..<see cref="Max"/>. Sockets already
    /// held above a lowered limit are never taken away: they count until released, and no new socket is reserved meanwhile.
    /// </summary>
    public void SetLimit(int effectiveMax) => Volatile.Write(ref _limit, Math.Clamp(effectiveMax, 1, Max));

    /// <summary>The node the overloads without a node reserve on: the first configured endpoint, or the master Sentinel names.</summary>
    public string DefaultNode => Volatile.Read(ref _default).Name;

    /// <summary>Makes <paramref name="node"/> the <see cref="DefaultNode"/> (under Sentinel: the new master after a switch).</summary>
    public void MoveDefault(string node) => Volatile.Write(ref _default, Node(node));

    /// <summary>Sockets on the busiest node, sentinel sockets left out; against a standalone server, the pool's sockets.</summary>
    public int Used => Busiest().ServerUsed;

    /// <summary>Socket creations refused on any node, since the pool started.</summary>
    public long Rejected
    {
        get
        {
            long rejected = 0;
            foreach (var node in _nodes.Values)
            {
                rejected += node.Rejected;
            }

            return rejected;
        }
    }

    /// <summary>The nodes that have held a socket of the pool.</summary>
    public IEnumerable<NodeBudget> Nodes => _nodes.Values;

    /// <summary>Sockets of <paramref name="role"/> on the busiest node (by its total).</summary>
    public int UsedBy(SocketRole role) => Busiest().UsedBy(role);

    /// <summary>The count of one node, created on first use.</summary>
    public NodeBudget Node(string node) => _nodes.GetOrAdd(node, static (name, budget) => new NodeBudget(name, budget), this);

    /// <summary>Reserves <paramref name="slots"/> slots on the <see cref="DefaultNode"/>, or returns false when that would exceed <see cref="Limit"/>.</summary>
    public bool TryReserve(SocketRole role, int slots = 1) => _default.TryReserve(role, slots);

    /// <summary>Gives back slots reserved with <see cref="TryReserve(SocketRole, int)"/>.</summary>
    public void Release(SocketRole role, int slots = 1) => _default.Release(role, slots);

    /// <summary>Reserves <paramref name="slots"/> slots for a socket of <paramref name="role"/> on <paramref name="node"/>, or returns false when that would exceed <see cref="Limit"/> there.</summary>
    public bool TryReserve(string node, SocketRole role, int slots = 1) => Node(node).TryReserve(role, slots);

    /// <summary>Gives back slots reserved with <see cref="TryReserve(string, SocketRole, int)"/>.</summary>
    public void Release(string node, SocketRole role, int slots = 1) => Node(node).Release(role, slots);

    /// <summary>The busiest node's counts, for messages; against a standalone server, the pool's.</summary>
    public string Describe()
    {
        var busiest = Busiest();
        return _nodes.Count > 1 ? $"{busiest.Name}: {busiest.Describe()}" : busiest.Describe();
    }

    // Ties go to the default node (under Sentinel, the master), so the pool-wide figures are its when no node is busier.
    private NodeBudget Busiest()
    {
        var busiest = Volatile.Read(ref _default);
        foreach (var node in _nodes.Values)
        {
            if (node.ServerUsed > busiest.ServerUsed)
            {
                busiest = node;
            }
        }

        return busiest;
    }

    /// <summary>The sockets the pool holds on one node.</summary>
    internal sealed class NodeBudget
    {
        private readonly int[] _byRole = new int[Enum.GetValues<SocketRole>().Length];
        private readonly ConnectionBudget _budget;
        private int _used;
        private readonly Lock _standInLock = new();
        private int _down;
        private int _standIns;
        private TaskCompletionSource? _standInsDone;
        private long _rejected;

        public NodeBudget(string name, ConnectionBudget budget)
        {
            Name = name;
            _budget = budget;
        }

        public string Name { get; }

        public int Max => _budget.Max;

        /// <summary>What a reservation is held to now: the budget's <see cref="ConnectionBudget.Limit"/>.</summary>
        public int Limit => _budget.Limit;

        public int Used => Volatile.Read(ref _used);

        /// <summary><see cref="Used"/> without the sentinel sockets: what this node holds as a server carrying commands.</summary>
        public int ServerUsed => Used - UsedBy(SocketRole.Sentinel);

        public long Rejected => Interlocked.Read(ref _rejected);

        public int UsedBy(SocketRole role) => Volatile.Read(ref _byRole[(int)role]);

        /// <summary>
        /// Slots held for sockets known to be closed now: StackExchange.Redis lost them, or their reconnect was held
        /// back by the node's breaker (see <see cref="NodeSockets"/>). A probe may stand in for one of them
        /// (<see cref="TakeProbeSlot"/>); while it does, none of them reconnects (<see cref="TryMarkUp"/>).
        /// </summary>
        public int Down => Volatile.Read(ref _down);

        /// <summary>Probes standing in for a socket of the pool that is down here now.</summary>
        public int StandIns
        {
            get
            {
                lock (_standInLock)
                {
                    return _standIns;
                }
            }
        }

        public void MarkDown()
        {
            lock (_standInLock)
            {
                _down++;
            }
        }

        /// <summary>A socket that was down is gone for good or connected by other means: it counts as down no longer.</summary>
        public void MarkUp()
        {
            lock (_standInLock)
            {
                _down--;
            }
        }

        /// <summary>
        /// A socket that is down asks to reconnect: true when it may (it counts as down no longer); false while a probe
        /// stands in for a socket down here, with <paramref name="standIn"/> to wait on before asking again.
        /// </summary>
        public bool TryMarkUp([NotNullWhen(false)] out Task? standIn)
        {
            lock (_standInLock)
            {
                if (_standIns > 0 && _standInsDone is { } done)
                {
                    standIn = done.Task;
                    return false;
                }

                _down--;
                standIn = null;
                return true;
            }
        }

        /// <summary>
        /// The slot for a probe of this node (the breaker's half-open probe, or the raw socket that classifies a lost
        /// socket), or null when there is none: a free slot, reserved as <see cref="SocketRole.Probe"/>; else, when
        /// the pool's own sockets hold every slot and one of them is <see cref="Down"/> with no other probe standing in
        /// for it, the probe stands in for that one, whose reconnect waits until the probe's socket is closed
        /// (<see cref="TryMarkUp"/>). So the sockets really open on the node stay within <see cref="Limit"/> either way.
        /// </summary>
        public ProbeSlot? TakeProbeSlot()
        {
            if (TryReserve(SocketRole.Probe, countRejection: false))
            {
                return new ProbeSlot(this, reserved: true);
            }

            lock (_standInLock)
            {
                if (Used - (_down - _standIns) + 1 > Limit)
                {
                    return null;
                }

                _standIns++;
                _standInsDone ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return new ProbeSlot(this, reserved: false);
            }
        }

        internal void EndStandIn()
        {
            TaskCompletionSource? done = null;
            lock (_standInLock)
            {
                if (--_standIns == 0)
                {
                    done = _standInsDone;
                    _standInsDone = null;
                }
            }

            done?.TrySetResult();
        }

        public bool TryReserve(SocketRole role, int slots = 1, bool countRejection = true)
        {
            var used = Volatile.Read(ref _used);
            while (true)
            {
                if (used + slots > Limit)
                {
                    if (countRejection)
                    {
                        Interlocked.Increment(ref _rejected);
                    }

                    return false;
                }

                var seen = Interlocked.CompareExchange(ref _used, used + slots, used);
                if (seen == used)
                {
                    Interlocked.Add(ref _byRole[(int)role], slots);
                    return true;
                }

                used = seen;
            }
        }

        public void Release(SocketRole role, int slots = 1)
        {
            Interlocked.Add(ref _byRole[(int)role], -slots);
            var after = Interlocked.Add(ref _used, -slots);
            System.Diagnostics.Debug.Assert(after >= 0, "Budget released more slots than it reserved.");
        }

        /// <summary>The counts for messages; while a fleet share lowers <see cref="Limit"/>, says so and what to raise.</summary>
        public string Describe() =>
            $"{Used} of {Max} sockets in use: {UsedBy(SocketRole.Multiplexer)} multiplexer, {UsedBy(SocketRole.Lease)} lease, {UsedBy(SocketRole.Monitor) + UsedBy(SocketRole.Probe)} monitor/probe"
            + (UsedBy(SocketRole.Sentinel) is > 0 and var sentinel ? $", {sentinel} sentinel" : string.Empty)
            + (Limit is var limit && limit < Max ? $"; the fleet's share limits this instance to {limit} (raise 'Fleet.MaxConnections' or run fewer instances)" : string.Empty);
    }

    /// <summary>The probe's place in a node's budget (<see cref="NodeBudget.TakeProbeSlot"/>); disposing gives a reserved slot back, or ends the stand-in, once.</summary>
    internal sealed class ProbeSlot(NodeBudget node, bool reserved) : IDisposable
    {
        private int _released;

        /// <summary>True when the probe took a free slot; false when it stands in for a socket of the pool that is down.</summary>
        public bool Reserved => reserved;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            if (reserved)
            {
                node.Release(SocketRole.Probe);
            }
            else
            {
                node.EndStandIn();
            }
        }
    }
}
