namespace RedisPoolKit.Tests.Connections;

public sealed class ConnectionBudgetTests
{
    [Fact]
    public void Reserves_up_to_the_cap_and_counts_by_role()
    {
        var budget = new ConnectionBudget(3);

        Assert.True(budget.TryReserve(SocketRole.Multiplexer));
        Assert.True(budget.TryReserve(SocketRole.Lease, 2));
        Assert.False(budget.TryReserve(SocketRole.Lease));

        Assert.Equal(3, budget.Used);
        Assert.Equal(1, budget.UsedBy(SocketRole.Multiplexer));
        Assert.Equal(2, budget.UsedBy(SocketRole.Lease));
        Assert.Equal(1, budget.Rejected);
        Assert.Contains("3 of 3 sockets", budget.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Released_slots_can_be_reserved_again()
    {
        var budget = new ConnectionBudget(1);
        Assert.True(budget.TryReserve(SocketRole.Lease));

        budget.Release(SocketRole.Lease);

        Assert.Equal(0, budget.Used);
        Assert.True(budget.TryReserve(SocketRole.Multiplexer));
    }

    [Fact]
    public async Task Never_exceeds_the_cap_under_any_race()
    {
        var budget = new ConnectionBudget(4);
        var held = 0;
        var peak = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 20_000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, (i, _) =>
        {
            var role = (SocketRole)(i % 3);
            if (budget.TryReserve(role))
            {
                var now = Interlocked.Increment(ref held);
                var seen = Volatile.Read(ref peak);
                while (now > seen && Interlocked.CompareExchange(ref peak, now, seen) != seen)
                {
                    seen = Volatile.Read(ref peak);
                }

                Interlocked.Decrement(ref held);
                budget.Release(role);
            }

            return ValueTask.CompletedTask;
        });

        Assert.InRange(peak, 1, 4);
        Assert.Equal(0, budget.Used);
    }
}
