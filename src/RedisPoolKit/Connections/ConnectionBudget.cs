namespace RedisPoolKit;

/// <summary>
/// The hard cap on the sockets one pool holds per server endpoint. Every socket the pool opens
/// (multiplexer, lease, monitor, probe) reserves a slot here first and returns it when closed.
/// </summary>
/// <remarks>
/// Every connection of the pool connects to the same endpoints, so the count per endpoint equals the count
/// of slots: one counter enforces the cap on each endpoint. A CAS loop keeps the cap exact under any race.
/// </remarks>
internal sealed class ConnectionBudget
{
    private readonly int[] _byRole = new int[4];
    private int _used;
    private long _rejected;

    public ConnectionBudget(int max) => Max = max;

    public int Max { get; }

    public int Used => Volatile.Read(ref _used);

    public long Rejected => Interlocked.Read(ref _rejected);

    public int UsedBy(SocketRole role) => Volatile.Read(ref _byRole[(int)role]);

    /// <summary>Reserves <paramref name="slots"/> slots for a socket of <paramref name="role"/>, or returns false when that would exceed <see cref="Max"/>.</summary>
    public bool TryReserve(SocketRole role, int slots = 1)
    {
        var used = Volatile.Read(ref _used);
        while (true)
        {
            if (used + slots > Max)
            {
                Interlocked.Increment(ref _rejected);
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

    public string Describe() =>
        $"{Used} of {Max} sockets in use: {UsedBy(SocketRole.Multiplexer)} multiplexer, {UsedBy(SocketRole.Lease)} lease, {UsedBy(SocketRole.Monitor) + UsedBy(SocketRole.Probe)} monitor/probe";
}
