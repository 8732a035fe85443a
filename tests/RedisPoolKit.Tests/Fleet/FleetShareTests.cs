using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Fleet;

public sealed class FleetShareTests
{
    [Theory]
    [InlineData(40, 10, 0, 4)]
    [InlineData(40, 10, 9, 4)]
    [InlineData(40, 3, 0, 14)]
    [InlineData(40, 3, 1, 13)]
    [InlineData(40, 3, 2, 13)]
    [InlineData(40, 1, 0, 16)]
    [InlineData(40, 30, 5, 2)]
    [InlineData(40, 3, -1, 13)]
    public void The_share_is_an_even_split_between_the_floor_and_the_own_maximum(int fleetMax, int instances, int rank, int expected) =>
        Assert.Equal(expected, FleetShare.Compute(fleetMax, instances, rank, floor: 2, ownMax: 16, critical: false));

    [Theory]
    [InlineData(40, 3)]
    [InlineData(40, 7)]
    [InlineData(100, 9)]
    [InlineData(17, 17)]
    public void Shares_add_up_to_exactly_the_fleet_maximum_when_every_instance_sees_the_same_set(int fleetMax, int instances)
    {
        var sum = Enumerable.Range(0, instances).Sum(rank => FleetShare.Compute(fleetMax, instances, rank, floor: 1, ownMax: int.MaxValue, critical: false));

        Assert.Equal(fleetMax, sum);
    }

    [Fact]
    public void At_critical_utilization_the_share_is_halved_but_never_below_the_floor()
    {
        Assert.Equal(10, FleetShare.Compute(40, 2, 0, floor: 2, ownMax: 100, critical: true));
        Assert.Equal(2, FleetShare.Compute(40, 10, 0, floor: 2, ownMax: 100, critical: true));
    }

    [Fact]
    public void The_own_maximum_wins_over_a_floor_above_it() =>
        Assert.Equal(1, FleetShare.Compute(40, 100, 0, floor: 2, ownMax: 1, critical: false));

    [Fact]
    public void The_floor_is_the_minimum_multiplexers_sockets_plus_one_lease_when_leasing_is_on()
    {
        Assert.Equal(2, FleetShare.Floor(new RedisPoolOptions()));
        Assert.Equal(1, FleetShare.Floor(new RedisPoolOptions { Leases = { MaxLeases = 0, MinIdle = 0 } }));
        Assert.Equal(5, FleetShare.Floor(new RedisPoolOptions { MinMultiplexers = 2, SharedSubscriptionConnection = false }));
    }

    [Fact]
    public void Rank_is_the_position_in_ordinal_id_order_or_minus_one_when_absent()
    {
        string[] members = ["pod-b", "pod-a", "pod-C"];

        Assert.Equal(0, FleetShare.Rank(members, "pod-C"));
        Assert.Equal(1, FleetShare.Rank(members, "pod-a"));
        Assert.Equal(2, FleetShare.Rank(members, "pod-b"));
        Assert.Equal(-1, FleetShare.Rank(members, "pod-z"));
    }

    [Fact]
    public void A_lowered_limit_refuses_new_slots_but_takes_none_away()
    {
        var budget = new ConnectionBudget(8);
        for (var i = 0; i < 6; i++)
        {
            Assert.True(budget.TryReserve(SocketRole.Lease));
        }

        budget.SetLimit(4);

        Assert.Equal(6, budget.Used);
        Assert.Equal(8, budget.Max);
        Assert.Equal(4, budget.Limit);
        Assert.False(budget.TryReserve(SocketRole.Lease));
        Assert.Contains("'Fleet.MaxConnections'", budget.Describe(), StringComparison.Ordinal);

        budget.Release(SocketRole.Lease, 3);
        Assert.True(budget.TryReserve(SocketRole.Lease));
        Assert.False(budget.TryReserve(SocketRole.Lease));

        budget.SetLimit(100);
        Assert.Equal(8, budget.Limit);
    }

    [Fact]
    public void Invalid_fleet_options_are_reported_with_name_and_value()
    {
        var options = new RedisPoolOptions
        {
            Configuration = "localhost:6379",
            Fleet = { Enabled = true, MaxConnections = 1, HeartbeatInterval = TimeSpan.FromSeconds(10), InstanceTtl = TimeSpan.FromSeconds(15) },
        };

        var errors = RedisPoolOptionsValidator.Validate(options);

        Assert.Contains(errors, e => e.StartsWith("Fleet.MaxConnections (1) must be at least 2", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Fleet.InstanceTtl ('00:00:15') must be at least twice Fleet.HeartbeatInterval ('00:00:10')", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => new RedisPool(options));
    }

    [Fact]
    public void A_disabled_fleet_needs_no_maximum()
    {
        var errors = RedisPoolOptionsValidator.Validate(new RedisPoolOptions { Configuration = "localhost:6379" });

        Assert.Empty(errors);
    }

    [Fact]
    public async Task Statistics_and_health_data_show_the_share_before_the_first_heartbeat()
    {
        await using var pool = new RedisPool(new RedisPoolOptions
        {
            Configuration = "localhost:1",
            Fleet = { Enabled = true, MaxConnections = 40 },
        });

        var statistics = pool.GetStatistics();
        var health = await new RedisPoolHealthCheck(pool, new FakeTimeProvider()).CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(8, statistics.MaxConnections);
        Assert.Equal(2, statistics.EffectiveMaxConnections);
        Assert.Equal(40, statistics.FleetMaxConnections);
        Assert.Null(statistics.FleetInstances);
        Assert.Equal(2, health.Data["fleet_share"]);
        Assert.Equal(40, health.Data["fleet_max_connections"]);
        Assert.False(health.Data.ContainsKey("fleet_instances"));
    }

    [Fact]
    public async Task Without_the_fleet_the_effective_budget_is_MaxConnections_and_health_data_has_no_share()
    {
        await using var pool = new RedisPool(new RedisPoolOptions { Configuration = "localhost:1" });

        var statistics = pool.GetStatistics();
        var health = await new RedisPoolHealthCheck(pool, new FakeTimeProvider()).CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(8, statistics.EffectiveMaxConnections);
        Assert.Null(statistics.FleetMaxConnections);
        Assert.False(health.Data.ContainsKey("fleet_share"));
    }
}
