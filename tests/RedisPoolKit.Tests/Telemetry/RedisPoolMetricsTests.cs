using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using static RedisPoolKit.RedisPoolInstrumentNames;

namespace RedisPoolKit.Tests.Telemetry;

public sealed class RedisPoolMetricsTests : IDisposable
{
    private const string Pool = "orders";
    private readonly TestMeterFactory _factory = new();
    private readonly RedisPoolOptions _options = new() { Name = Pool, MaxConnections = 6, Leases = { MinIdle = 1, MaxLeases = 3 } };
    private RedisPoolStatistics _statistics = Statistics();
    private int _snapshots;

    public void Dispose() => _factory.Dispose();

    private static RedisPoolStatistics Statistics() => new() { PoolName = Pool, MaxConnections = 6 };

    private RedisPoolMetrics CreateMetrics(string pool = Pool) =>
        new(pool, _factory, () => { Interlocked.Increment(ref _snapshots); return _statistics; }, _options);

    private MetricCollector<T> Collect<T>(string instrument) where T : struct => new(_factory, MeterName, instrument);

    private static IReadOnlyList<CollectedMeasurement<T>> Observe<T>(MetricCollector<T> collector) where T : struct
    {
        collector.RecordObservableInstruments();
        return collector.GetMeasurementSnapshot();
    }

    [Fact]
    public void Two_leases_used_are_counted_as_used_connections()
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(ConnectionCount);
        _statistics = Statistics() with { Sockets = 3, LeaseSockets = 3, LeasesUsed = 2, LeasesIdle = 1 };

        var measurements = Observe(collector);

        Assert.Equal("{connection}", collector.Instrument!.Unit);
        Assert.IsType<ObservableUpDownCounter<long>>(collector.Instrument);
        var used = Assert.Single(measurements, m => m.ContainsTags(new KeyValuePair<string, object?>(StateTag, StateUsed)));
        var idle = Assert.Single(measurements, m => m.ContainsTags(new KeyValuePair<string, object?>(StateTag, StateIdle)));
        Assert.Equal(2, used.Value);
        Assert.Equal(1, idle.Value);
        Assert.All(measurements, m => Assert.Equal(Pool, m.Tags[PoolNameTag]));
    }

    [Fact]
    public void Multiplexer_sockets_count_as_used()
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(ConnectionCount);
        _statistics = Statistics() with { Sockets = 4, MultiplexerSockets = 2, LeaseSockets = 2, LeasesUsed = 2 };

        var used = Assert.Single(Observe(collector), m => m.ContainsTags(new KeyValuePair<string, object?>(StateTag, StateUsed)));

        Assert.Equal(4, used.Value);
    }

    [Fact]
    public void One_lease_waiter_is_one_pending_request()
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(ConnectionPendingRequests);
        _statistics = Statistics() with { LeaseWaiters = 1 };

        var measurements = Observe(collector);

        Assert.Equal("{request}", collector.Instrument!.Unit);
        Assert.Equal(1, measurements.Sum(m => m.Value));
        Assert.Equal(1, Assert.Single(measurements, m => m.ContainsTags(new KeyValuePair<string, object?>(RoleTag, "lease"))).Value);
        Assert.All(measurements, m => Assert.Equal(Pool, m.Tags[PoolNameTag]));
    }

    [Fact]
    public void Queued_commands_are_pending_requests_of_the_multiplexers()
    {
        using var metrics = CreateMetrics();
        using var pending = Collect<long>(ConnectionPendingRequests);
        using var queued = Collect<long>(CommandsQueued);
        _statistics = Statistics() with { Queued = 5 };

        Assert.Equal(5, Assert.Single(Observe(pending), m => m.ContainsTags(new KeyValuePair<string, object?>(RoleTag, "multiplexer"))).Value);
        Assert.Equal(5, Assert.Single(Observe(queued)).Value);
    }

    [Fact]
    public void A_timed_out_wait_adds_one_timeout()
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(ConnectionTimeouts);

        metrics.RecordTimeout(RedisPoolExhaustedReason.LeaseTimeout);

        var timeout = Assert.Single(collector.GetMeasurementSnapshot());
        Assert.Equal(1, timeout.Value);
        Assert.Equal("{timeout}", collector.Instrument!.Unit);
        Assert.Equal(Pool, timeout.Tags[PoolNameTag]);
        Assert.Equal("lease_timeout", timeout.Tags[ReasonTag]);
    }

    [Fact]
    public void Rejections_are_counted_by_reason()
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(Rejected);

        metrics.RecordRejected(RedisPoolExhaustedReason.QueueFull);
        metrics.RecordRejected(RedisPoolExhaustedReason.QueueFull);
        metrics.RecordRejectedCircuitOpen();

        var measurements = collector.GetMeasurementSnapshot();
        Assert.Equal(2, measurements.Count(m => (string?)m.Tags[ReasonTag] == "queue_full"));
        Assert.Single(measurements, m => (string?)m.Tags[ReasonTag] == "circuit_open");
    }

    [Theory]
    [InlineData(ConnectionCreateTime)]
    [InlineData(ConnectionWaitTime)]
    [InlineData(ConnectionUseTime)]
    public void Durations_are_histograms_in_seconds_with_the_conventions_buckets(string name)
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<double>(name);

        var histogram = Assert.IsType<Histogram<double>>(collector.Instrument);
        Assert.Equal("s", histogram.Unit);
        Assert.Equal([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10], histogram.Advice!.HistogramBucketBoundaries!);
    }

    [Fact]
    public void Create_wait_and_use_times_are_recorded_in_seconds()
    {
        using var metrics = CreateMetrics();
        using var create = Collect<double>(ConnectionCreateTime);
        using var wait = Collect<double>(ConnectionWaitTime);
        using var use = Collect<double>(ConnectionUseTime);

        metrics.RecordCreateTime(TimeSpan.FromMilliseconds(12), SocketRole.Lease);
        metrics.RecordLeaseWait(TimeSpan.FromMilliseconds(250));
        metrics.RecordAdmissionWait(TimeSpan.FromMilliseconds(3));
        metrics.RecordLeaseUse(TimeSpan.FromSeconds(2));

        var created = Assert.Single(create.GetMeasurementSnapshot());
        Assert.Equal(0.012, created.Value, 6);
        Assert.Equal("lease", created.Tags[RoleTag]);
        Assert.Equal(Pool, created.Tags[PoolNameTag]);
        var waits = wait.GetMeasurementSnapshot();
        Assert.Equal(0.25, Assert.Single(waits, m => (string?)m.Tags[RoleTag] == "lease").Value, 6);
        Assert.Equal(0.003, Assert.Single(waits, m => (string?)m.Tags[RoleTag] == "multiplexer").Value, 6);
        Assert.Equal(2, Assert.Single(use.GetMeasurementSnapshot()).Value, 6);
    }

    [Theory]
    [InlineData(ConnectionMax, 6)]
    [InlineData(ConnectionIdleMin, 1)]
    [InlineData(ConnectionIdleMax, 3)]
    public void Limits_come_from_the_options(string name, long expected)
    {
        using var metrics = CreateMetrics();
        using var collector = Collect<long>(name);

        var measurement = Assert.Single(Observe(collector));

        Assert.Equal(expected, measurement.Value);
        Assert.Equal("{connection}", collector.Instrument!.Unit);
        Assert.Equal(Pool, measurement.Tags[PoolNameTag]);
    }

    [Fact]
    public void Redis_specific_gauges_read_the_statistics()
    {
        using var metrics = CreateMetrics();
        using var inFlight = Collect<long>(CommandsInFlight);
        using var multiplexers = Collect<long>(Multiplexers);
        using var suppressed = Collect<long>(ReconnectsSuppressed);
        using var circuit = Collect<long>(CircuitState);
        _statistics = Statistics() with { InFlight = 42, Multiplexers = 2, ReconnectsSuppressed = 7, CircuitState = RedisPoolCircuitState.HalfOpen };

        Assert.Equal(42, Assert.Single(Observe(inFlight)).Value);
        Assert.Equal(2, Assert.Single(Observe(multiplexers)).Value);
        Assert.Equal(7, Assert.Single(Observe(suppressed)).Value);
        var states = Observe(circuit);
        Assert.Equal(3, states.Count);
        Assert.Equal(1, Assert.Single(states, m => (string?)m.Tags[CircuitStateTag] == "half_open").Value);
        Assert.Equal(0, states.Where(m => (string?)m.Tags[CircuitStateTag] != "half_open").Sum(m => m.Value));
    }

    [Fact]
    public void Server_gauges_read_the_monitors_last_reading()
    {
        using var metrics = CreateMetrics();
        using var connected = Collect<long>(ServerConnectedClients);
        using var max = Collect<long>(ServerMaxClients);
        using var blocked = Collect<long>(ServerBlockedClients);
        using var rejected = Collect<long>(ServerRejectedConnections);
        using var utilization = Collect<double>(ServerUtilization);

        Assert.Empty(Observe(utilization));

        _statistics = Statistics() with { LastServerUtilization = new RedisServerUtilization(850, 1000, 12, 31, DateTimeOffset.UnixEpoch) };

        Assert.Equal(850, Assert.Single(Observe(connected)).Value);
        Assert.Equal(1000, Assert.Single(Observe(max)).Value);
        Assert.Equal(12, Assert.Single(Observe(blocked)).Value);
        Assert.Equal(31, Assert.Single(Observe(rejected)).Value);
        var ratio = Assert.Single(Observe(utilization));
        Assert.Equal(0.85, ratio.Value, 6);
        Assert.Equal("1", utilization.Instrument!.Unit);
        Assert.Equal(Pool, ratio.Tags[PoolNameTag]);
    }

    [Fact]
    public void Server_gauges_report_every_node_tagged_with_its_address_and_port()
    {
        using var metrics = CreateMetrics();
        using var connected = Collect<long>(ServerConnectedClients);
        using var utilization = Collect<double>(ServerUtilization);
        using var max = Collect<long>(ServerMaxClients);

        RedisServerUtilization Reading(string endPoint, long clients, long? maxClients) =>
            new(clients, maxClients, 0, 0, DateTimeOffset.UnixEpoch) { EndPoint = endPoint };
        _statistics = Statistics() with
        {
            LastServerUtilization = Reading("127.0.0.1:7001", 9, 10),
            ServerUtilizationByNode = new Dictionary<string, RedisServerUtilization>
            {
                ["127.0.0.1:7000"] = Reading("127.0.0.1:7000", 4, 10000),
                ["127.0.0.1:7001"] = Reading("127.0.0.1:7001", 9, 10),
                ["[::1]:7002"] = Reading("[::1]:7002", 5, null),
            },
        };

        var byNode = Observe(connected).ToDictionary(m => ((string)m.Tags[ServerAddressTag]!, (int)m.Tags[ServerPortTag]!), m => m.Value);
        Assert.Equal(new Dictionary<(string, int), long> { [("127.0.0.1", 7000)] = 4, [("127.0.0.1", 7001)] = 9, [("::1", 7002)] = 5 }, byNode);
        Assert.All(Observe(connected), m => Assert.Equal(Pool, m.Tags[PoolNameTag]));
        var ratios = Observe(utilization).ToDictionary(m => (int)m.Tags[ServerPortTag]!, m => m.Value);
        Assert.Equal([7000, 7001], ratios.Keys.Order());
        Assert.Equal(0.9, ratios[7001], 6);
        Assert.Equal(2, Observe(max).Count);
    }

    [Fact]
    public void In_a_cluster_the_in_flight_limit_gauges_have_a_series_per_master_beside_the_pools()
    {
        using var metrics = CreateMetrics();
        using var limit = Collect<long>(InFlightLimit);
        using var baseline = Collect<double>(InFlightLimitBaseline);
        using var changes = Collect<long>(InFlightLimitChanges);
        _statistics = Statistics() with
        {
            InFlightLimit = 1024,
            Nodes =
            [
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7000", InFlightLimit = 64, InFlightLimitBaseline = TimeSpan.FromMilliseconds(2), InFlightLimitDecreases = 4 },
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7001", InFlightLimit = 1024, InFlightLimitBaseline = TimeSpan.FromMilliseconds(1) },
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7003", Role = RedisPoolNodeRole.Replica },
            ],
        };

        var limits = Observe(limit);
        Assert.Equal(1024, Assert.Single(limits, m => !m.Tags.ContainsKey(ServerPortTag)).Value);
        Assert.Equal(
            new Dictionary<(string, int), long> { [("127.0.0.1", 7000)] = 64, [("127.0.0.1", 7001)] = 1024 },
            limits.Where(m => m.Tags.ContainsKey(ServerPortTag)).ToDictionary(m => ((string)m.Tags[ServerAddressTag]!, (int)m.Tags[ServerPortTag]!), m => m.Value));
        Assert.All(limits, m => Assert.Equal(Pool, m.Tags[PoolNameTag]));
        Assert.Equal(0.002, Assert.Single(Observe(baseline), m => (int?)m.Tags.GetValueOrDefault(ServerPortTag) == 7000).Value, 6);
        var decreases = Assert.Single(Observe(changes), m => (int?)m.Tags.GetValueOrDefault(ServerPortTag) == 7000 && (string?)m.Tags[LimitDirectionTag] == LimitDecrease);
        Assert.Equal(4, decreases.Value);
    }

    [Theory]
    [InlineData("127.0.0.1:6379", "127.0.0.1", 6379)]
    [InlineData("redis.example.com:7000", "redis.example.com", 7000)]
    [InlineData("[::1]:6380", "::1", 6380)]
    [InlineData("unix-socket", "unix-socket", null)]
    public void Endpoints_split_into_address_and_port(string endPoint, string address, int? port) =>
        Assert.Equal((address, port), RedisPoolMetrics.SplitEndPoint(endPoint));

    [Fact]
    public void Circuit_transitions_and_leak_suspicions_are_counted()
    {
        using var metrics = CreateMetrics();
        using var transitions = Collect<long>(CircuitTransitions);
        using var leaks = Collect<long>(LeaksSuspected);

        metrics.RecordCircuitTransition(RedisPoolCircuitState.Closed, RedisPoolCircuitState.Open);
        metrics.RecordLeakSuspected();

        var transition = Assert.Single(transitions.GetMeasurementSnapshot());
        Assert.Equal("closed", transition.Tags[CircuitFromTag]);
        Assert.Equal("open", transition.Tags[CircuitToTag]);
        Assert.Equal(1, Assert.Single(leaks.GetMeasurementSnapshot()).Value);
    }

    [Fact]
    public void Pools_sharing_a_meter_share_instruments_and_report_under_their_own_name()
    {
        using var orders = CreateMetrics("orders");
        using var carts = CreateMetrics("carts");
        using var collector = Collect<long>(ConnectionMax);

        var measurements = Observe(collector);

        Assert.Equal(["carts", "orders"], measurements.Select(m => (string)m.Tags[PoolNameTag]!).Order());
    }

    [Fact]
    public void A_disposed_pool_stops_reporting()
    {
        var metrics = CreateMetrics();
        using var collector = Collect<long>(ConnectionMax);
        Assert.Single(Observe(collector));

        metrics.Dispose();
        collector.Clear();

        Assert.Empty(Observe(collector));
    }

    [Fact]
    public void Nothing_reads_the_statistics_without_a_listener()
    {
        using var metrics = CreateMetrics();

        metrics.RecordCreateTime(TimeSpan.FromMilliseconds(1), SocketRole.Multiplexer);
        metrics.RecordLeaseWait(TimeSpan.FromMilliseconds(1));
        metrics.RecordTimeout(RedisPoolExhaustedReason.QueueTimeout);

        Assert.Equal(0, Volatile.Read(ref _snapshots));
    }

    [Fact]
    public void Without_a_factory_the_static_meter_is_used()
    {
        using var metrics = new RedisPoolMetrics("static-pool", meterFactory: null, () => _statistics, _options);
        using var collector = new MetricCollector<long>(metrics.Meter, ConnectionMax);

        var measurement = Assert.Single(Observe(collector), m => (string?)m.Tags[PoolNameTag] == "static-pool");

        Assert.Equal(MeterName, metrics.Meter.Name);
        Assert.Null(metrics.Meter.Scope);
        Assert.Equal(6, measurement.Value);
    }
}
