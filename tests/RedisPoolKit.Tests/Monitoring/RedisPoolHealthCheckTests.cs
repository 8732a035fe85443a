using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Monitoring;

public sealed class RedisPoolHealthCheckTests
{
    private sealed class FakePool : IRedisPool
    {
        public RedisPoolStatistics Statistics { get; set; } = new();
        public string Name => "orders";
        public IConnectionMultiplexer Multiplexer => throw new NotSupportedException();
        public RedisPoolCircuitState CircuitState => Statistics.CircuitState;
        public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged { add { } remove { } }
        public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged { add { } remove { } }
        public Task ConnectAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public IDatabase GetDatabase(int db = -1) => throw new NotSupportedException();
        public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken) => throw new NotSupportedException();
        public RedisPoolStatistics GetStatistics() => Statistics;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        public void Dispose() { }
    }

    private sealed class LeveledPool(RedisServerUtilizationLevel level) : IRedisPool, IServerUtilizationSource
    {
        private readonly FakePool _inner = new() { Statistics = Healthy };
        public RedisServerUtilizationLevel ServerUtilizationLevel => level;
        public string Name => _inner.Name;
        public IConnectionMultiplexer Multiplexer => _inner.Multiplexer;
        public RedisPoolCircuitState CircuitState => _inner.CircuitState;
        public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged { add { } remove { } }
        public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged { add { } remove { } }
        public Task ConnectAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public IDatabase GetDatabase(int db = -1) => _inner.GetDatabase(db);
        public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default) => _inner.LeaseAsync(cancellationToken);
        public ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken) => _inner.LeaseAsync(key, cancellationToken);
        public RedisPoolStatistics GetStatistics() => _inner.Statistics;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        public void Dispose() { }
    }

    /// <summary>A pool of three cluster nodes, one of them critical.</summary>
    private sealed class ClusterPool : IRedisPool, IServerUtilizationSource
    {
        private static RedisServerUtilization Reading(string endPoint, long clients, long max, long links = 4) =>
            new(clients, max, 0, 0, DateTimeOffset.UnixEpoch) { EndPoint = endPoint, ClusterConnections = links };

        private readonly FakePool _inner = new() { Statistics = Healthy with { LastServerUtilization = Reading("127.0.0.1:7001", 15, 20) } };

        public IReadOnlyDictionary<string, RedisServerUtilization> ServerUtilizationByNode { get; } = new Dictionary<string, RedisServerUtilization>
        {
            ["127.0.0.1:7000"] = Reading("127.0.0.1:7000", 6, 10000),
            ["127.0.0.1:7001"] = Reading("127.0.0.1:7001", 15, 20),
            ["127.0.0.1:7002"] = Reading("127.0.0.1:7002", 300, 10000),
        };

        public RedisServerUtilizationLevel ServerUtilizationLevel => RedisServerUtilizationLevel.Critical;
        public RedisServerUtilizationLevel ServerUtilizationLevelOf(string node) =>
            node == "127.0.0.1:7001" ? RedisServerUtilizationLevel.Critical : RedisServerUtilizationLevel.Normal;
        public string Name => _inner.Name;
        public IConnectionMultiplexer Multiplexer => _inner.Multiplexer;
        public RedisPoolCircuitState CircuitState => _inner.CircuitState;
        public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged { add { } remove { } }
        public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged { add { } remove { } }
        public Task ConnectAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
        public IDatabase GetDatabase(int db = -1) => _inner.GetDatabase(db);
        public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default) => _inner.LeaseAsync(cancellationToken);
        public ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken) => _inner.LeaseAsync(key, cancellationToken);
        public RedisPoolStatistics GetStatistics() => _inner.Statistics;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        public void Dispose() { }
    }

    private static readonly RedisPoolStatistics Healthy = new()
    {
        PoolName = "orders",
        MaxConnections = 8,
        Sockets = 2,
        MultiplexerSockets = 1,
        LeaseSockets = 1,
        Multiplexers = 1,
        InFlight = 3,
        LeasesIdle = 1,
        CircuitState = RedisPoolCircuitState.Closed,
        LastServerUtilization = new RedisServerUtilization(100, 1000, 2, 0, DateTimeOffset.UnixEpoch),
    };

    private readonly FakePool _pool = new() { Statistics = Healthy };
    private readonly FakeTimeProvider _time = new();

    private Task<HealthCheckResult> CheckAsync(IRedisPool? pool = null) =>
        new RedisPoolHealthCheck(pool ?? _pool, _time).CheckHealthAsync(new HealthCheckContext());

    [Fact]
    public async Task A_serving_pool_is_healthy_and_reports_its_numbers()
    {
        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal(8, result.Data["max_connections"]);
        Assert.Equal(2, result.Data["sockets_connected"]);
        Assert.Equal(3, result.Data["in_flight"]);
        Assert.Equal(100L, result.Data["server_connected_clients"]);
        Assert.Equal(1000L, result.Data["server_maxclients"]);
        Assert.Equal(0.1, (double)result.Data["server_utilization"], 6);
        Assert.Equal("Closed", result.Data["circuit_state"]);
    }

    [Fact]
    public async Task Warning_utilization_is_degraded()
    {
        _pool.Statistics = Healthy with { LastServerUtilization = new RedisServerUtilization(850, 1000, 0, 0, DateTimeOffset.UnixEpoch) };

        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("850 of 1000", result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_pools_own_level_wins_over_the_default_thresholds()
    {
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(new LeveledPool(RedisServerUtilizationLevel.Warning))).Status);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(new LeveledPool(RedisServerUtilizationLevel.Normal))).Status);
    }

    [Fact]
    public async Task In_a_cluster_the_worst_node_is_named_and_every_node_listed_worst_first()
    {
        var result = await CheckAsync(new ClusterPool());

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("server utilization is Critical on 127.0.0.1:7001 (19 of 20 clients)", result.Description, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1:7001", result.Data["server_endpoint"]);
        Assert.Equal(4L, result.Data["server_cluster_connections"]);
        Assert.Equal("Critical", result.Data["server_utilization_level"]);
        Assert.Equal("127.0.0.1:7001 Critical 19/20; 127.0.0.1:7002 Normal 304/10000; 127.0.0.1:7000 Normal 10/10000", result.Data["server_nodes"]);
    }

    [Fact]
    public async Task A_cluster_node_whose_breaker_is_open_makes_the_pool_degraded_and_is_named()
    {
        // In a cluster a full node opens its own breaker only; the pool's breaker stays closed, so the node's must show here.
        _pool.Statistics = Healthy with
        {
            Nodes =
            [
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7000", Role = RedisPoolNodeRole.Primary, CircuitState = RedisPoolCircuitState.Closed },
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7001", Role = RedisPoolNodeRole.Primary, CircuitState = RedisPoolCircuitState.Open },
                new RedisPoolNodeStatistics { EndPoint = "127.0.0.1:7002", Role = RedisPoolNodeRole.Primary, CircuitState = RedisPoolCircuitState.HalfOpen },
            ],
        };

        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("the max-clients breaker of node 127.0.0.1:7001 is Open", result.Description, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:7002 is HalfOpen", result.Description, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1:7001 Open; 127.0.0.1:7002 HalfOpen", result.Data["node_circuits_not_closed"]);
    }

    [Fact]
    public async Task A_half_open_breaker_is_degraded()
    {
        _pool.Statistics = Healthy with { CircuitState = RedisPoolCircuitState.HalfOpen };

        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("half-open", result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_open_breaker_with_sockets_still_serving_is_degraded()
    {
        _pool.Statistics = Healthy with { CircuitState = RedisPoolCircuitState.Open };

        Assert.Equal(HealthStatus.Degraded, (await CheckAsync()).Status);
    }

    [Fact]
    public async Task An_open_breaker_without_a_connected_socket_is_unhealthy()
    {
        _pool.Statistics = Healthy with { CircuitState = RedisPoolCircuitState.Open, Sockets = 1, MultiplexerSockets = 1, LeaseSockets = 0, LeasesIdle = 0, ConnectingSockets = 1 };

        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Equal(0, result.Data["sockets_connected"]);
    }

    [Fact]
    public async Task An_open_breaker_whose_only_multiplexer_lost_its_socket_is_unhealthy()
    {
        // The lost multiplexer still holds its budget slot (Sockets 1) while reconnecting; it is not connected (Multiplexers 0).
        _pool.Statistics = Healthy with { CircuitState = RedisPoolCircuitState.Open, Sockets = 1, MultiplexerSockets = 1, LeaseSockets = 0, LeasesIdle = 0, ConnectingSockets = 0, Multiplexers = 0 };

        var result = await CheckAsync();

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Equal(0, result.Data["sockets_connected"]);
    }

    [Fact]
    public async Task A_queue_that_stays_non_empty_is_degraded_a_passing_burst_is_not()
    {
        var check = new RedisPoolHealthCheck(_pool, _time);
        _pool.Statistics = Healthy with { Queued = 4 };

        Assert.Equal(HealthStatus.Healthy, (await check.CheckHealthAsync(new HealthCheckContext())).Status);
        _time.Advance(TimeSpan.FromSeconds(5));
        _pool.Statistics = Healthy;
        Assert.Equal(HealthStatus.Healthy, (await check.CheckHealthAsync(new HealthCheckContext())).Status);

        _pool.Statistics = Healthy with { LeaseWaiters = 1 };
        Assert.Equal(HealthStatus.Healthy, (await check.CheckHealthAsync(new HealthCheckContext())).Status);
        _time.Advance(RedisPoolHealthCheck.SustainedWaitThreshold);
        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("1 lease waiters", result.Description, StringComparison.Ordinal);
        Assert.Equal(10.0, result.Data["waiting_seconds"]);
    }

    [Fact]
    public async Task The_check_AddHealthCheck_registers_keeps_its_state_between_runs_and_sees_a_sustained_queue()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddRedisPool("orders", o => o.Configuration = "127.0.0.1:6390").AddHealthCheck();
        services.AddKeyedSingleton<IRedisPool>("orders", _pool);
        await using var provider = services.BuildServiceProvider();
        var health = provider.GetRequiredService<HealthCheckService>();
        _pool.Statistics = Healthy with { Queued = 4 };

        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Status);
        _time.Advance(RedisPoolHealthCheck.SustainedWaitThreshold);

        Assert.Equal(HealthStatus.Degraded, (await health.CheckHealthAsync()).Status);
    }
}
