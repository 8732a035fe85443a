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

    private int _limit;

    public ConnectionBudget(int max)
    {
        Max = max;
        _limit = max;
    }

    /// <summary>The configured cap (<see cref="RedisPoolOptions.MaxConnections"/>).</summary>
    public int Max { get; }

    /// <summary>The cap <see cref="TryReserve"/> enforces now: <see cref="Max"/>, or less while a fleet share lowers it.</summary>
    public int Limit => Volatile.Read(ref _limit);

    /// <summary>
    /// Lowers (or raises back) the cap new sockets are held to, within 1..<see cref="Max"/>. Sockets already held above
    /// a lowered limit are never taken away: they count until released, and no new socket is reserved meanwhile.
    /// </summary>
    public void SetLimit(int effectiveMax) => Volatile.Write(ref _limit, Math.Clamp(effectiveMax, 1, Max));

    public int Used => Volatile.Read(ref _used);

    public long Rejected => Interlocked.Read(ref _rejected);

    public int UsedBy(SocketRole role) => Volatile.Read(ref _byRole[(int)role]);

    /// <summary>Reserves <paramref name="slots"/> slots for a socket of <paramref name="role"/>, or returns false when that would exceed <see cref="Limit"/>.</summary>
    public bool TryReserve(SocketRole role, int slots = 1)
    {
        var used = Volatile.Read(ref _used);
        while (true)
        {
            if (used + slots > Limit)
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
        $"{Used} of {Max} sockets in use: {UsedBy(SocketRole.Multiplexer)} multiplexer, {UsedBy(SocketRole.Lease)} lease, {UsedBy(SocketRole.Monitor) + UsedBy(SocketRole.Probe)} monitor/probe"
        + (Limit < Max ? $"; the fleet's share limits this instance to {Limit} (raise 'Fleet.MaxConnections' or run fewer instances)" : string.Empty);
}
