using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace RedisPoolKit.Tests.Leases;

public class LeasingDisabledTests
{
    [Fact]
    public async Task A_lease_from_a_pool_with_MaxLeases_zero_is_refused_as_leasing_disabled_naming_the_option()
    {
        const string PoolName = "no-leases";
        using var rejected = new MetricCollector<long>(null, RedisPoolInstrumentNames.MeterName, RedisPoolInstrumentNames.Rejected);
        await using var pool = new RedisPool(new RedisPoolOptions { Name = PoolName, Configuration = "127.0.0.1:1", Leases = { MaxLeases = 0 } });

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(async () => await pool.LeaseAsync());

        Assert.Equal(RedisPoolExhaustedReason.LeasingDisabled, ex.Reason);
        Assert.Contains("'Leases.MaxLeases' is 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Set 'Leases.MaxLeases' above 0", ex.Message, StringComparison.Ordinal);
        Assert.Single(rejected.GetMeasurementSnapshot(), m => Equals(m.Tags[RedisPoolInstrumentNames.PoolNameTag], PoolName) && Equals(m.Tags[RedisPoolInstrumentNames.ReasonTag], "leasing_disabled"));
        Assert.Equal(0, pool.GetStatistics().Sockets);
    }
}
