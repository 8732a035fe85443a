using RedisPoolKit;

namespace IncidentReplay;

/// <summary>
/// Phase C: the same services through RedisPoolKit. Each instance owns one pool whose socket budget is a share of
/// maxclients; blocking BLPOP runs on leased connections, everything else on the pool's shared multiplexers.
/// </summary>
internal sealed class PooledWorkload : IWorkload
{
    private readonly RedisPool[] _orders;
    private readonly RedisPool[] _carts;
    private readonly RedisPool[] _workers;
    private readonly RedisPool _producer;

    public PooledWorkload(string endpoint, Budget budget)
    {
        Budget = budget;
        _orders = Create("order-service", "order", budget.OrderConnections, leases: 0);
        _carts = Create("cart-service", "cart", budget.CartConnections, leases: 0);
        _workers = Create("notification-worker", "worker", budget.WorkerConnections, leases: budget.WorkerLeases);
        // The producer's pool also runs the server monitor (one socket of its budget), so the report shows the utilization signals an operator would see.
        _producer = new RedisPool(Options(endpoint, "order-service", "notify", budget.ProducerConnections, leases: 0, monitor: true));
        Labels =
        [
            $"C1 one pool per instance: order-service x{_orders.Length} ({budget.OrderConnections} sockets each), cart-service x{_carts.Length} ({budget.CartConnections}), notification-worker x{_workers.Length} ({budget.WorkerConnections}, of which {budget.WorkerLeases} leases), notify producer ({budget.ProducerConnections})",
            $"C2 budgets add up to {budget.Total} sockets + 1 admin, under maxclients {budget.MaxClients}",
            "C3 BLPOP on leased connections (await using var lease = await pool.LeaseAsync(ct)); commands on pool.GetDatabase()",
            "C4 bounded admission queues and a max-clients breaker instead of reconnect storms",
            $"C5 idle leased sockets closed after {LeaseIdleTimeout.TotalSeconds:0} s (Leases.IdleTimeout), so the spike's consumer sockets go away within the run; the notify pool runs the server monitor",
        ];

        RedisPool[] Create(string service, string prefix, int connections, int leases) =>
            [.. Enumerable.Range(0, Scenario.InstancesPerService).Select(i => new RedisPool(Options(endpoint, service, $"{prefix}-{i}", connections, leases)))];
    }

    public Budget Budget { get; }

    public IReadOnlyList<string> Labels { get; }

    /// <summary>How long an idle leased socket is kept: short, so the report shows the spike's sockets going away within the run.</summary>
    public static readonly TimeSpan LeaseIdleTimeout = TimeSpan.FromSeconds(3);

    public int? PoolSockets => All().Sum(p => p.GetStatistics().Sockets);

    public void Observe(PhaseRecorder recorder)
    {
        foreach (var pool in All())
        {
            pool.CircuitStateChanged += (_, e) => recorder.Signal($"{e.PoolName}: breaker {e.PreviousState} -> {e.State} ({e.Reason})");
            pool.ServerUtilizationChanged += (_, e) => recorder.Signal($"{e.PoolName}: server utilization {e.PreviousLevel} -> {e.Level} ({e.Reading.ConnectedClients}/{e.Reading.MaxClients} clients)");
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(All().Select(p => p.ConnectAsync(cancellationToken)));

    public async Task OrderRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        await ServiceRequests.OrderAsync(_orders[instance].GetDatabase(), sequence).ConfigureAwait(false);
    }

    public async Task CartRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        await ServiceRequests.CartAsync(_carts[instance].GetDatabase(), instance, sequence).ConfigureAwait(false);
    }

    public async Task PushAsync(string id, CancellationToken cancellationToken) =>
        await _producer.GetDatabase().ListRightPushAsync(Scenario.QueueKey, id).ConfigureAwait(false);

    public async Task<string?> PopAsync(int instance, int consumer, CancellationToken cancellationToken)
    {
        await using var lease = await _workers[instance].LeaseAsync(cancellationToken).ConfigureAwait(false);
        var result = await lease.Database.ExecuteAsync("BLPOP", Scenario.QueueKey, 1).ConfigureAwait(false);
        return result.IsNull ? null : (string?)result[1];
    }

    public ValueTask ConsumerStoppedAsync(int instance, int consumer) => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var pool in All())
        {
            await pool.DisposeAsync().ConfigureAwait(false);
        }
    }

    private IEnumerable<RedisPool> All() => _orders.Concat(_carts).Concat(_workers).Append(_producer);

    private static RedisPoolOptions Options(string endpoint, string service, string instance, int connections, int leases, bool monitor = false) => new()
    {
        Configuration = endpoint,
        ServiceName = service,
        InstanceId = instance,
        MaxConnections = connections,
        MaxMultiplexers = Math.Max(1, Math.Min(2, connections - leases - (monitor ? 1 : 0))),
        Leases = { MaxLeases = leases, AcquireTimeout = TimeSpan.FromSeconds(3), IdleTimeout = LeaseIdleTimeout },
        Monitor = { Enabled = monitor },
    };
}

/// <summary>
/// Splits 75 % of maxclients (less the admin connection) between the instances: notification-workers get a double
/// share because each consumer holds a leased socket while it blocks.
/// </summary>
internal sealed record Budget(int MaxClients, int OrderConnections, int CartConnections, int WorkerConnections, int WorkerLeases, int ProducerConnections)
{
    public int Total => Scenario.InstancesPerService * (OrderConnections + CartConnections + WorkerConnections) + ProducerConnections;

    public static Budget For(int maxClients)
    {
        const int Producer = 2; // one multiplexer socket and the monitor's
        var available = (int)(maxClients * 0.75) - 1 - Producer;
        var unit = Math.Max(1, available / (Scenario.InstancesPerService * 4));
        var worker = Math.Max(2, 2 * unit);
        return new Budget(maxClients, Math.Max(1, unit), Math.Max(1, unit), worker, worker - 1, Producer);
    }
}
