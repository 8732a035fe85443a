namespace RedisPoolKit;

/// <summary>
/// Brings the pool to the effective budget the fleet gives it: the budget refuses new sockets above it, idle lease
/// sockets close first, then extra multiplexers scale in (never below MinMultiplexers), and a lease returned while the
/// pool is above it is closed instead of kept. Held leases are never taken away: they count until released. When the
/// budget grows back, lease waiters get new sockets at once.
/// </summary>
/// <remarks>
/// The budget is per node. In a cluster each master has its own lease pool, whose sockets are all on that master: its
/// idle ones close when that master holds more than the budget, and one returned is closed while that master does.
/// The pool's keyless leases go by the busiest node, as against a standalone server or under Sentinel.
/// </remarks>
internal sealed class FleetBudgetEnforcer(ConnectionBudget budget, MultiplexerSet multiplexers, Func<IEnumerable<LeasePool>> leasePools, int socketsPerMultiplexer)
{
    private const string Reason = "the fleet's share of 'Fleet.MaxConnections' was lowered";

    /// <summary>True while the pool holds more sockets than its effective budget on its busiest node.</summary>
    public bool OverLimit => budget.Used > budget.Limit;

    /// <summary>True while the node <paramref name="pool"/>'s sockets are on holds more than the effective budget.</summary>
    public bool IsOverLimit(LeasePool pool) =>
        pool.Node is { } node ? budget.Node(RedisConnectionFactory.Format(node)).ServerUsed > budget.Limit : OverLimit;

    public void Apply(int limit)
    {
        var previous = budget.Limit;
        budget.SetLimit(limit);

        // Idle lease sockets close first, each on the node it is connected to, up to what that node holds above the limit.
        var closed = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var pools = leasePools().ToList();
        foreach (var pool in pools)
        {
            var node = pool.Node is { } endPoint ? RedisConnectionFactory.Format(endPoint) : budget.DefaultNode;
            var held = pool.Node is null ? budget.Used : budget.Node(node).ServerUsed;
            var excess = held - closed.GetValueOrDefault(node) - budget.Limit;
            if (excess > 0)
            {
                closed[node] = closed.GetValueOrDefault(node) + pool.CloseIdle(excess, Reason);
            }
        }

        // A multiplexer holds a socket on every node it reaches: scale in by what the busiest node still holds above the limit.
        var left = 0;
        foreach (var node in budget.Nodes)
        {
            left = Math.Max(left, node.ServerUsed - closed.GetValueOrDefault(node.Name) - budget.Limit);
        }

        if (left > 0)
        {
            multiplexers.Scaler.ScaleIn((left + socketsPerMultiplexer - 1) / socketsPerMultiplexer, Reason);
        }

        if (budget.Limit > previous)
        {
            foreach (var pool in pools)
            {
                pool.OnBudgetRaised();
            }
        }
    }
}
