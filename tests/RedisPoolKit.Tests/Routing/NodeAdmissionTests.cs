using StackExchange.Redis;

namespace RedisPoolKit.Tests.Routing;

/// <summary>
/// In a cluster each master has its own adaptive in-flight limit: a command for a key enters its node's limiter, then
/// the pool's. The slot table here is set by hand ("slow" serves slots 0-99, "fast" 100-199), keys name their slot.
/// </summary>
public sealed class NodeAdmissionTests : IAsyncLifetime
{
    private const string PoolName = "node-admission";
    private const int Ceiling = 64;
    private const int Floor = 4;

    private static readonly RedisKey SlowKey = "5";
    private static readonly RedisKey FastKey = "150";

    private readonly MultiplexerSetFixture _f = new(minMultiplexers: 1, maxMultiplexers: 1);
    private readonly RedisPoolMetrics _metrics = new(PoolName, meterFactory: null, statistics: null, new RedisPoolOptions());
    private readonly AdmissionLimiter _admission;
    private readonly NodeAdmission _nodes;
    private readonly CommandRouter _router;

    public NodeAdmissionTests()
    {
        _admission = new AdmissionLimiter(PoolName, Ceiling * 4, maxQueueLength: 1, TimeSpan.FromSeconds(1), _f.Time, _metrics, adaptiveLimit: new AdaptiveInFlightLimit(Floor, Ceiling * 4, _f.Time));
        _nodes = new NodeAdmission(node => new AdmissionLimiter(PoolName, Ceiling, maxQueueLength: 1, TimeSpan.FromSeconds(1), _f.Time, _metrics, adaptiveLimit: new AdaptiveInFlightLimit(Floor, Ceiling, _f.Time), node: node));
        _router = new CommandRouter(PoolName, _admission, _f.Set, _metrics, timeProvider: _f.Time, queueTimeout: TimeSpan.FromSeconds(1));
    }

    // Like StackExchange.Redis, a null key has no slot.
    private static int SlotOf(RedisKey key) => (string?)key is { } text ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : -1;

    private AdmissionLimiter Slow => _nodes.Limiters["slow:1"];

    private AdmissionLimiter Fast => _nodes.Limiters["fast:2"];

    public async Task InitializeAsync()
    {
        _nodes.Assign([("slow:1", 0, 99), ("fast:2", 100, 199)], SlotOf);
        _router.UseNodeLimits(_nodes);
        await _f.Set.EnsureMinimumAsync(CancellationToken.None);
        await _f.NextAddedAsync();
    }

    public async Task DisposeAsync()
    {
        await _f.DisposeAsync();
        _metrics.Dispose();
    }

    [Fact]
    public void A_key_maps_to_the_limiter_of_its_slot_owner_and_a_key_without_an_owner_to_none()
    {
        var empty = new NodeAdmission(_ => throw new InvalidOperationException("no node before a slot table"));
        Assert.Null(empty.For(SlowKey));

        Assert.Same(Slow, _nodes.For(SlowKey));
        Assert.Same(Fast, _nodes.For(FastKey));
        Assert.Null(_nodes.For("500"));
        Assert.Null(_nodes.For(CommandRouter.FirstKey([])));
        Assert.Same(Fast, _nodes.For(CommandRouter.FirstKey(["199", "0"])));
    }

    [Fact]
    public void The_slot_table_follows_a_moved_slot_and_keeps_each_nodes_limiter()
    {
        var slow = Slow;
        _nodes.Assign([("slow:1", 0, 98), ("fast:2", 99, 199)], SlotOf);

        Assert.Same(Fast, _nodes.For("99"));
        Assert.Same(slow, Slow);
    }

    [Fact]
    public void A_slot_moved_to_a_known_master_is_updated_in_place_and_to_an_unknown_one_asks_for_a_rebuild()
    {
        Assert.False(_nodes.Move(5, new System.Net.DnsEndPoint("new", 3)));
        Assert.Same(Slow, _nodes.For(SlowKey));

        Assert.True(_nodes.Move(5, new System.Net.DnsEndPoint("fast", 2)));
        Assert.Same(Fast, _nodes.For(SlowKey));
        Assert.Same(Slow, _nodes.For("6"));
    }

    [Fact]
    public void Per_node_limits_fix_the_pools_limit_at_MaxInFlight()
    {
        Assert.Equal(Ceiling * 4, _admission.InFlightLimit.Limit);
        Assert.Equal(Ceiling * 4, _admission.InFlightLimit.Floor);
    }

    [Fact]
    public void A_keyed_command_takes_its_nodes_permit_and_the_pools_and_gives_both_back()
    {
        Assert.True(_router.TryRoute(-1, SlowKey, out var route));

        Assert.Same(Slow, route.Node);
        Assert.Equal((1, 0, 1), (Slow.InFlight, Fast.InFlight, _admission.InFlight));

        _router.Exit(route, failure: null);

        Assert.Equal((0, 0), (Slow.InFlight, _admission.InFlight));
    }

    [Fact]
    public void A_keyless_command_takes_the_pools_permit_only()
    {
        Assert.True(_router.TryRoute(-1, CommandRouter.FirstKey(null), out var route));

        Assert.Null(route.Node);
        Assert.Equal((0, 1), (Slow.InFlight, _admission.InFlight));
        _router.Exit(route, failure: null);
    }

    [Fact]
    public async Task A_node_at_its_limit_queues_and_rejects_its_own_commands_naming_the_node_while_the_others_are_admitted()
    {
        var held = new List<CommandRoute>();
        while (_router.TryRoute(-1, SlowKey, out var route))
        {
            held.Add(route);
        }

        Assert.Equal(Ceiling, held.Count);

        // The slow node's queue holds one; the next is refused at once. The fast node does not notice.
        var queued = _router.RouteAsync(-1, SlowKey).AsTask();
        Assert.False(queued.IsCompleted);
        var full = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => _router.RouteAsync(-1, SlowKey).AsTask());
        Assert.Equal(RedisPoolExhaustedReason.QueueFull, full.Reason);
        Assert.Contains("for node slow:1", full.Message, StringComparison.Ordinal);
        Assert.Contains($"{Ceiling} in flight to node slow:1 of its adaptive in-flight limit {Ceiling}", full.Message, StringComparison.Ordinal);
        Assert.Contains("'MaxQueueLength'", full.Message, StringComparison.Ordinal);

        Assert.True(_router.TryRoute(-1, FastKey, out var fast));
        _router.Exit(fast, failure: null);

        // QueueTimeout: the queued one times out naming the node; it never held a pool permit.
        Assert.Equal(Ceiling, _admission.InFlight);
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        var timedOut = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => queued.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, timedOut.Reason);
        Assert.Contains("for node slow:1 waited 'QueueTimeout'", timedOut.Message, StringComparison.Ordinal);

        foreach (var route in held)
        {
            _router.Exit(route, failure: null);
        }

        Assert.Equal((0, 0), (Slow.InFlight, _admission.InFlight));
    }

    [Fact]
    public async Task A_queued_command_for_a_node_is_admitted_when_its_node_frees_a_permit()
    {
        var held = new List<CommandRoute>();
        while (_router.TryRoute(-1, SlowKey, out var route))
        {
            held.Add(route);
        }

        var queued = _router.RouteAsync(-1, SlowKey).AsTask();
        _router.Exit(held[0], failure: null);
        var admitted = await queued.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Same(Slow, admitted.Node);
        Assert.Equal((Ceiling, Ceiling), (Slow.InFlight, _admission.InFlight));
        foreach (var route in held.Skip(1).Append(admitted))
        {
            _router.Exit(route, failure: null);
        }
    }

    [Fact]
    public void A_master_that_stops_answering_fills_its_ceiling_and_leaves_a_floor_of_the_pools_permits_to_the_others()
    {
        const int maxInFlight = 16;
        const int floor = 4;
        var ceiling = NodeAdmission.CeilingFor(maxInFlight, floor);
        Assert.Equal(12, ceiling);
        Assert.Equal(floor, NodeAdmission.CeilingFor(6, floor));

        var pool = new AdmissionLimiter(PoolName, maxInFlight, maxQueueLength: 0, TimeSpan.FromSeconds(1), _f.Time, _metrics, adaptiveLimit: new AdaptiveInFlightLimit(floor, maxInFlight, _f.Time));
        var nodes = new NodeAdmission(node => new AdmissionLimiter(PoolName, maxInFlight, maxQueueLength: 0, TimeSpan.FromSeconds(1), _f.Time, _metrics, adaptiveLimit: new AdaptiveInFlightLimit(floor, ceiling, _f.Time), node: node));
        nodes.Assign([("hung:1", 0, 99), ("fast:2", 100, 199)], SlotOf);
        var router = new CommandRouter(PoolName, pool, _f.Set, _metrics, timeProvider: _f.Time, queueTimeout: TimeSpan.FromSeconds(1));
        router.UseNodeLimits(nodes);

        // Nothing completes on the hung master, so its limit learns nothing and stays at its ceiling.
        var hung = 0;
        while (router.TryRoute(-1, SlowKey, out _))
        {
            hung++;
        }

        var fast = 0;
        while (router.TryRoute(-1, FastKey, out _))
        {
            fast++;
        }

        Assert.Equal((ceiling, floor), (hung, fast));
        Assert.Equal(maxInFlight, pool.InFlight);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(10)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(128)]
    [InlineData(1024)]
    public void At_any_MaxInFlight_a_master_at_its_ceiling_leaves_pool_permits_to_the_other_masters(int maxInFlight)
    {
        var (floor, ceiling) = NodeAdmission.LimitsFor(maxInFlight);

        Assert.InRange(floor, 1, RedisPoolDefaults.AdaptiveInFlightFloor);
        Assert.InRange(ceiling, floor, maxInFlight - 1);
        Assert.True(maxInFlight - ceiling >= floor, $"MaxInFlight {maxInFlight}: a hung master's ceiling {ceiling} leaves {maxInFlight - ceiling} permits, less than the floor {floor}");
    }

    [Fact]
    public void From_twice_the_floor_a_master_moves_between_64_and_MaxInFlight_less_64()
    {
        Assert.Equal((64, 960), NodeAdmission.LimitsFor(1024));
        Assert.Equal((64, 64), NodeAdmission.LimitsFor(128));
    }

    [Fact]
    public void A_slow_node_shrinks_its_own_limit_the_others_keep_theirs_and_it_climbs_back_when_fast_again()
    {
        // Both answer at once: the baselines are learnt.
        Run(rounds: 20, slowLatency: TimeSpan.Zero);
        Assert.Equal((Ceiling, Ceiling), (Slow.InFlightLimit.Limit, Fast.InFlightLimit.Limit));

        // One node answers in 20 ms: its limit falls to the floor; the other's and the pool's stay.
        Run(rounds: 60, slowLatency: TimeSpan.FromMilliseconds(20));
        Assert.Equal(Floor, Slow.InFlightLimit.Limit);
        Assert.Equal(Ceiling, Fast.InFlightLimit.Limit);
        Assert.Equal(Ceiling * 4, _admission.InFlightLimit.Limit);
        Assert.Equal(0, Fast.RejectedQueueFull + Fast.RejectedQueueTimeout);

        // Fast again: its limit climbs back.
        Run(rounds: 400, slowLatency: TimeSpan.Zero);
        Assert.Equal(Ceiling, Slow.InFlightLimit.Limit);
    }

    /// <summary>Rounds of up to a full limit's commands per node: the fast node's answer at once, the slow node's after <paramref name="slowLatency"/>.</summary>
    private void Run(int rounds, TimeSpan slowLatency)
    {
        for (var round = 0; round < rounds; round++)
        {
            Assert.Equal(Ceiling, Batch(FastKey, TimeSpan.Zero));
            Batch(SlowKey, slowLatency);
            _f.Time.Advance(TimeSpan.FromMilliseconds(25));
        }
    }

    private int Batch(RedisKey key, TimeSpan latency)
    {
        var routes = new List<CommandRoute>();
        while (routes.Count < Ceiling && _router.TryRoute(-1, key, out var route))
        {
            routes.Add(route);
        }

        // Last in, first out: a sampled command then sees how many were in flight with it.
        _f.Time.Advance(latency);
        routes.Reverse();
        foreach (var route in routes)
        {
            _router.Exit(route, failure: null);
        }

        return routes.Count;
    }
}
