namespace RedisPoolKit;

/// <summary>
/// Brings the pool to the effective budget the fleet gives it: the budget refuses new sockets above it, idle lease
/// sockets close first, then extra multiplexers scale in (never below MinMultiplexers), and a lease returned while the
/// pool is above it is closed instead of kept. Held leases are never taken away: they count until released. When the
/// budget grows back, lease waiters get new sockets at once.
/// </summary>
internal sealed class FleetBudgetEnforcer(ConnectionBudget budget, MultiplexerSet multiplexers, LeasePool leases, int socketsPerMultiplexer)
{
    private const string Reason = "the fleet's share of 'Fleet.MaxConnections' was lowered";

    /// <summary>True while the pool holds more sockets than its effective budget.</summary>
    public bool OverLimit => budget.Used > budget.Limit;

    public void Apply(int limit)
    {
        var previous = budget.Limit;
        budget.SetLimit(limit);
        var excess = budget.Used - budget.Limit;
        if (excess > 0)
        {
            excess -= leases.CloseIdle(excess, Reason);
        }

        if (excess > 0)
        {
            multiplexers.Scaler.ScaleIn((excess + socketsPerMultiplexer - 1) / socketsPerMultiplexer, Reason);
        }

        if (budget.Limit > previous)
        {
            leases.OnBudgetRaised();
        }
    }
}
