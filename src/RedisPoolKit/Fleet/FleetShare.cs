namespace RedisPoolKit;

/// <summary>The share math: what one instance may hold of the fleet's budget, given what it has seen on the server.</summary>
internal static class FleetShare
{
    /// <summary>
    /// The sockets one instance needs to work at all: its <see cref="RedisPoolOptions.MinMultiplexers"/> sockets plus one
    /// lease socket where leasing is on.
    /// </summary>
    public static int Floor(RedisPoolOptions options) =>
        (options.MinMultiplexers * (options.SharedSubscriptionConnection ? 1 : 2)) + (options.Leases.MaxLeases > 0 ? 1 : 0);

    /// <summary>
    /// The instance's effective budget: <paramref name="fleetMax"/> split evenly over <paramref name="instances"/>, the
    /// remainder going one each to the first instances in id order (so the shares add up to exactly
    /// <paramref name="fleetMax"/> when every instance sees the same set), halved while the server is at critical
    /// utilization, never below <paramref name="floor"/> and never above <paramref name="ownMax"/>.
    /// </summary>
    /// <param name="fleetMax">Fleet.MaxConnections.</param>
    /// <param name="instances">Live instances seen, this one included (at least 1).</param>
    /// <param name="rank">This instance's position among them in ordinal id order; -1 when it was not among them.</param>
    /// <param name="floor">What the instance needs to work (<see cref="Floor"/>).</param>
    /// <param name="ownMax">The instance's own MaxConnections.</param>
    /// <param name="critical">Whether the server is at critical utilization.</param>
    public static int Compute(int fleetMax, int instances, int rank, int floor, int ownMax, bool critical)
    {
        instances = Math.Max(1, instances);
        var share = (fleetMax / instances) + (rank >= 0 && rank < fleetMax % instances ? 1 : 0);
        if (critical)
        {
            share /= 2;
        }

        return Math.Min(ownMax, Math.Max(floor, share));
    }

    /// <summary>The rank <see cref="Compute"/> takes: the position of <paramref name="self"/> among <paramref name="members"/> in ordinal order.</summary>
    public static int Rank(IReadOnlyCollection<string> members, string self)
    {
        var rank = 0;
        var found = false;
        foreach (var member in members)
        {
            var order = string.CompareOrdinal(member, self);
            if (order < 0)
            {
                rank++;
            }
            else if (order == 0)
            {
                found = true;
            }
        }

        return found ? rank : -1;
    }
}
