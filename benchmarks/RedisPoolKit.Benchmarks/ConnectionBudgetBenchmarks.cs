using BenchmarkDotNet.Attributes;

namespace RedisPoolKit.Benchmarks;

/// <summary>What every socket the pool opens or closes pays to the budget: one reserve and one release, with room to spare.</summary>
[MemoryDiagnoser]
public class ConnectionBudgetBenchmarks
{
    private readonly ConnectionBudget _budget = new(8);
    private readonly ConnectionBudget _full = new(0);

    [Benchmark]
    public bool TryReserveRelease()
    {
        if (!_budget.TryReserve(SocketRole.Lease))
        {
            return false;
        }

        _budget.Release(SocketRole.Lease);
        return true;
    }

    [Benchmark]
    public bool TryReserveWhenFull() => _full.TryReserve(SocketRole.Lease);
}
