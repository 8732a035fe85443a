using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>The RedisPoolKit pool. See <see cref="IRedisPool"/>.</summary>
public sealed class RedisPool : IRedisPool, IServerUtilizationSource
{
    private readonly RedisPoolOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ConnectionBudget _budget;
    private readonly MaxClientsBreaker _breaker;
    private readonly RedisConnectionFactory _factory;
    private readonly MultiplexerSet _multiplexers;
    private readonly AdmissionLimiter _admission;
    private readonly CommandRouter _router;
    private readonly RedisPoolMetrics _metrics;
    private readonly PooledMultiplexer _facade;
    private readonly ServerMonitor? _monitor;
    private readonly LeasePool _leases;
    private readonly FleetCoordinator? _fleet;
    private readonly SentinelFollower? _sentinel;
    private readonly ClusterLeases _clusterLeases;
    private readonly RedisTopology _topology = new();
    private readonly NodeBreakers _nodeBreakers;
    private readonly NodeAdmission? _nodeAdmission;
    private readonly PooledDatabase?[] _databases = new PooledDatabase?[17];
    private Task? _disposal;

    private readonly FleetBudgetEnforcer? _fleetEnforcer;
    private ConnectionMultiplexer? _clusterMultiplexer;

    /// <summary>Creates a pool. Validates <paramref name="options"/> (throwing one exception naming every invalid option) and does no I/O.</summary>
    public RedisPool(RedisPoolOptions options, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, timeProvider: null, meterFactory: null)
    {
    }

    internal RedisPool(RedisPoolOptions options, ILoggerFactory? loggerFactory, TimeProvider? timeProvider, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        var configuration = RedisPoolOptionsValidator.ThrowIfInvalid(options);

        // A private copy: options objects are mutable and may be shared (DI), the pool reads them for life.
        _options = RedisPoolOptionsCopy.Clone(options);
        RedisConnectionFactory.ApplyConfigureOptions(_options, configuration);
        Name = _options.Name;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("RedisPoolKit.RedisPool");
        _metrics = new RedisPoolMetrics(Name, meterFactory, GetStatistics, _options);
        _budget = new ConnectionBudget(_options.MaxConnections, RedisConnectionFactory.Format(configuration.EndPoints[0]));
        _breaker = new MaxClientsBreaker(
            Name, _options.Breaker, configuration.EndPoints, configuration.Ssl, _options.ConnectTimeout, _timeProvider, _logger, _metrics,
            readRejectedConnections: ReadRejectedConnectionsAsync,
            probeBudget: ProbeBudget);
        _breaker.StateChanged += OnBreakerStateChanged;

        // In a cluster each node gets a breaker of its own, created when one of its sockets fails.
        _nodeBreakers = new NodeBreakers(endPoint => new MaxClientsBreaker(
            Name, _options.Breaker, [endPoint], configuration.Ssl, _options.ConnectTimeout, _timeProvider, _logger, _metrics,
            readRejectedConnections: ct => ReadRejectedConnectionsAsync(endPoint, ct),
            probeBudget: ProbeBudget));
        _factory = new RedisConnectionFactory(_options, configuration, _budget, _breaker, _timeProvider, _logger, _metrics);
        // Only a cluster multiplexer connects to every node: elsewhere a connection opens to its one endpoint, and a slot
        // prepaid on another known node (under Sentinel, an old master) would be held for nothing as long as it lives.
        _factory.KnownNodes = () => _topology.IsCluster ? _topology.Roles.Keys : [];
        _factory.NodeGate = _nodeBreakers;
        _factory.NodeBreakerFor = _nodeBreakers.For;
        _factory.ClassifiesPerNode = () => _topology.IsCluster;
        _multiplexers = new MultiplexerSet(_options, _factory, _timeProvider, _logger);
        var inFlightLimit = _options.AdaptiveInFlight
            ? new AdaptiveInFlightLimit(Math.Min(RedisPoolDefaults.AdaptiveInFlightFloor, _options.MaxInFlight), _options.MaxInFlight, _timeProvider)
            : null;
        var rejectionLog = new RejectionLog(Name, _logger, _timeProvider);
        _admission = new AdmissionLimiter(Name, _options.MaxInFlight, _options.MaxQueueLength, _options.QueueTimeout, _timeProvider, _metrics, rejectionLog, inFlightLimit);
        _router = new CommandRouter(Name, _admission, _multiplexers, _metrics, _nodeBreakers, _timeProvider, _options.QueueTimeout);
        if (_options.AdaptiveInFlight)
        {
            // In a cluster each master gets an adaptive limit of its own, so a slow master holds back its own commands only.
            var (floor, ceiling) = NodeAdmission.LimitsFor(_options.MaxInFlight);
            _nodeAdmission = new NodeAdmission(node => new AdmissionLimiter(
                Name, _options.MaxInFlight, _options.MaxQueueLength, _options.QueueTimeout, _timeProvider, _metrics, rejectionLog,
                new AdaptiveInFlightLimit(floor, ceiling, _timeProvider), node));
            _topology.Refreshed += OnTopologyRefreshed;
        }
        _facade = new PooledMultiplexer(this, _multiplexers, _logger);
        _leases = new LeasePool(
            _options.Leases,
            Name,
            ConnectKeylessLeaseAsync,
            clientId => UnblockAsync(clientId, node: null),
            _budget.Describe,
            _options.ShutdownGracePeriod,
            _timeProvider,
            _logger,
            _metrics);
        if (!string.IsNullOrEmpty(configuration.ServiceName))
        {
            // Under Sentinel the pool's sockets connect to the master itself; the follower finds it and follows failovers.
            _sentinel = new SentinelFollower(configuration, _factory, _budget, _admission, _multiplexers, _leases, _options, _timeProvider, _logger);
            _factory.BeforeConnect = _sentinel.BeforeConnectAsync;
            _sentinel.MasterLeft += _topology.ForgetNode;
        }

        _clusterLeases = new ClusterLeases(
            (node, cluster) => WithFleetShare(new LeasePool(
                _options.Leases,
                Name,
                (index, ct) => FactoryLeaseConnection.ConnectAsync(_factory, _options, _timeProvider, index, node, ct),
                clientId => UnblockAsync(clientId, node),
                _budget.Describe,
                _options.ShutdownGracePeriod,
                _timeProvider,
                _logger,
                _metrics,
                node,
                cluster)),
            key => Volatile.Read(ref _clusterMultiplexer)?.HashSlot(key) ?? -1);
        if (_options.Monitor.Enabled)
        {
            // The monitor reads over a socket the pool already holds: a full server refuses new ones.
            _monitor = new ServerMonitor(Name, _options.Monitor, ConnectedMultiplexers, _timeProvider, _logger);
            _monitor.UtilizationChanged += OnUtilizationChanged;
            _multiplexers.Added += _ => StartMonitor();
        }

        if (_options.Fleet.Enabled)
        {
            // Registered over a socket the pool already holds, like the monitor; the share caps the budget.
            // In a cluster each master's lease pool is shrunk by what that master holds (the pools are created on first use).
            var enforcer = new FleetBudgetEnforcer(_budget, _multiplexers, () => LeasePools, _factory.SlotsFor(SocketRole.Multiplexer));
            _fleetEnforcer = enforcer;
            WithFleetShare(_leases);
            var instanceId = _options.InstanceId ?? RedisClientNames.DefaultInstanceId;
            var registry = new RedisFleetRegistry(() => ConnectedMultiplexer()?.GetDatabase(), _options.ServiceName, Name, instanceId, _options.Fleet.InstanceTtl, _timeProvider);
            _fleet = new FleetCoordinator(Name, _options.Fleet, instanceId, _options.MaxConnections, FleetShare.Floor(_options), registry, enforcer.Apply, _timeProvider, _logger);
            _multiplexers.Added += _ => StartFleet();
        }

        // StackExchange.Redis's own failed reconnects must be classified too, or a storm would go unseen.
        _multiplexers.Added += entry => entry.Multiplexer.ConnectionFailed += OnConnectionFailed;
        _multiplexers.Removed += entry => entry.Multiplexer.ConnectionFailed -= OnConnectionFailed;
        _multiplexers.Added += entry => _topology.Observe(entry.Multiplexer);
        _multiplexers.Removed += entry => _topology.Forget(entry.Multiplexer);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IConnectionMultiplexer Multiplexer
    {
        get
        {
            ThrowIfDisposed();
            return _facade;
        }
    }

    /// <inheritdoc />
    public RedisPoolCircuitState CircuitState => _breaker.State;

    /// <inheritdoc />
    public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged;

    /// <inheritdoc />
    public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged;

    RedisServerUtilizationLevel IServerUtilizationSource.ServerUtilizationLevel => _monitor?.Level ?? RedisServerUtilizationLevel.Normal;

    string? IServerUtilizationSource.ServerMonitorUnavailable => _monitor?.Unavailable;

    IReadOnlyDictionary<string, RedisServerUtilization> IServerUtilizationSource.ServerUtilizationByNode => ServerUtilizationByNode;

    RedisServerUtilizationLevel IServerUtilizationSource.ServerUtilizationLevelOf(string node) => _monitor?.LevelOf(node) ?? RedisServerUtilizationLevel.Normal;

    /// <summary>The monitor's latest reading of every node, keyed by "host:port" (<see cref="RedisConnectionFactory.Format"/>); empty without a monitor or before its first reading.</summary>
    internal IReadOnlyDictionary<string, RedisServerUtilization> ServerUtilizationByNode => _monitor?.Nodes ?? NoNodes;

    private static readonly IReadOnlyDictionary<string, RedisServerUtilization> NoNodes = new Dictionary<string, RedisServerUtilization>(StringComparer.Ordinal);

    internal ServerMonitor? Monitor => _monitor;

    internal RedisConnectionFactory ConnectionFactory => _factory;

    internal MultiplexerSet Multiplexers => _multiplexers;

    internal ConnectionBudget Budget => _budget;

    internal FleetCoordinator? Fleet => _fleet;
    internal SentinelFollower? Sentinel => _sentinel;
    internal RedisTopology Topology => _topology;

    /// <inheritdoc />
    public Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _multiplexers.EnsureMinimumAsync(cancellationToken);
    }

    /// <inheritdoc />
    public IDatabase GetDatabase(int db = -1)
    {
        ThrowIfDisposed();

        // StackExchange.Redis would throw this on every command, after the pool had taken a permit for it.
        ArgumentOutOfRangeException.ThrowIfLessThan(db, -1);
        if ((uint)(db + 1) < (uint)_databases.Length)
        {
            return _databases[db + 1] ??= new PooledDatabase(_router, db, _facade);
        }

        return new PooledDatabase(_router, db, _facade);
    }

    /// <inheritdoc />
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0027:API with optional parameter(s) should have the most parameters amongst its public overloads", Justification = "LeaseAsync() is the common call; the keyed overload takes its token without a default, so no call can match both.")]
    public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ThrowIfLeasingDisabled();
        if (IsCluster())
        {
            throw new InvalidOperationException(FactoryLeaseConnection.KeylessInCluster(Name));
        }

        var pending = _leases.AcquireAsync(cancellationToken);
        return pending.IsCompleted ? pending : WaitForLeaseAsync(pending);
    }

    /// <inheritdoc />
    public ValueTask<RedisLease> LeaseAsync(RedisKey key) => LeaseAsync(key, CancellationToken.None);

    /// <inheritdoc />
    public ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        ThrowIfLeasingDisabled();
        return _topology.Cluster == false ? LeaseAsync(cancellationToken) : LeaseOnSlotOwnerAsync(key, cancellationToken);
    }

    private async ValueTask<RedisLease> LeaseOnSlotOwnerAsync(RedisKey key, CancellationToken cancellationToken)
    {
        // The shared multiplexers know the slot map; a pool that has none connected yet connects one.
        var multiplexer = ConnectedMultiplexer() ?? (await _multiplexers.PickAsync(cancellationToken).ConfigureAwait(false)).Multiplexer;
        // Asked until a multiplexer has said: a keyless lease may have found the cluster without one.
        if (Volatile.Read(ref _clusterMultiplexer) is null && !LearnTopology(multiplexer))
        {
            return await LeaseAsync(cancellationToken).ConfigureAwait(false);
        }

        var owner = SlotOwner(multiplexer, key) ?? multiplexer.GetServer(key, flags: CommandFlags.DemandMaster).EndPoint;
        return await WaitForLeaseAsync(_clusterLeases.For(owner).AcquireAsync(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>
    /// The master of <paramref name="key"/>'s slot as the cluster's configuration says. <c>GetServer(key)</c> answers
    /// some other, connected node while the owner's socket is down (its breaker open): a lease there would be refused
    /// its every command with a redirect.
    /// </summary>
    private static System.Net.EndPoint? SlotOwner(ConnectionMultiplexer multiplexer, in RedisKey key)
    {
        var slot = multiplexer.HashSlot(key);
        foreach (var server in multiplexer.GetServers())
        {
            if (server.IsConnected && server.ClusterConfiguration?.GetBySlot(slot) is { IsReplica: false } owner)
            {
                return owner.EndPoint;
            }
        }

        return null;
    }

    private void ThrowIfLeasingDisabled()
    {
        if (_options.Leases.MaxLeases == 0)
        {
            _metrics.RecordRejected(RedisPoolExhaustedReason.LeasingDisabled);
            throw new RedisPoolExhaustedException(
                RedisPoolExhaustedReason.LeasingDisabled,
                $"Pool '{Name}' has leasing disabled: 'Leases.MaxLeases' is 0. Set 'Leases.MaxLeases' above 0 to lease connections for blocking commands.");
        }
    }

    /// <summary>Whether the servers are a Redis Cluster, as far as known: asked of a connected multiplexer until one has said.</summary>
    private bool IsCluster() => _topology.Cluster ?? (ConnectedMultiplexer() is { } multiplexer && LearnTopology(multiplexer));

    /// <summary>Reads from a connected multiplexer whether the servers are a Redis Cluster, and keeps the answer.</summary>
    private bool LearnTopology(ConnectionMultiplexer multiplexer)
    {
        var cluster = FactoryLeaseConnection.IsCluster(multiplexer);
        if (cluster)
        {
            // Kept for hashing keys to slots, which needs no socket.
            Volatile.Write(ref _clusterMultiplexer, multiplexer);
        }

        _topology.Learn(cluster);
        return cluster;
    }

    /// <summary>Opens a socket for <see cref="LeaseAsync(CancellationToken)"/>; in a cluster it fails and remembers why.</summary>
    private async ValueTask<ILeaseConnection> ConnectKeylessLeaseAsync(int index, CancellationToken cancellationToken)
    {
        try
        {
            return await FactoryLeaseConnection.ConnectAsync(_factory, _options, _timeProvider, index, node: null, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException) when (_topology.Cluster is null)
        {
            // Only the cluster check throws this: no later keyless lease opens a socket to find out again.
            _topology.Learn(cluster: true);
            throw;
        }
    }

    private async ValueTask<RedisLease> WaitForLeaseAsync(ValueTask<RedisLease> pending)
    {
        // Only a caller that really waits gets a span: the idle-socket fast path stays free of it.
        using var activity = RedisPoolActivity.StartLeaseWait(Name);
        try
        {
            return await pending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            RedisPoolActivity.SetFailed(activity, ex);
            throw;
        }
    }

    /// <inheritdoc />
    public RedisPoolStatistics GetStatistics()
    {
        var multiplexers = _multiplexers.Entries;
        var connected = 0;
        foreach (var entry in multiplexers)
        {
            if (entry.IsConnected)
            {
                connected++;
            }
        }

        return new RedisPoolStatistics
        {
            PoolName = Name,
            MaxConnections = _budget.Max,
            Sockets = _budget.Used,
            MultiplexerSockets = _budget.UsedBy(SocketRole.Multiplexer),
            LeaseSockets = _budget.UsedBy(SocketRole.Lease),
            ConnectingSockets = Math.Max(0, _budget.UsedBy(SocketRole.Multiplexer) - (multiplexers.Count * _factory.SlotsFor(SocketRole.Multiplexer))),
            Multiplexers = connected,
            InFlight = _admission.InFlight,
            Queued = _admission.Queued + SumOverNodeLimiters(static l => l.Queued),
            InFlightLimit = _admission.InFlightLimit.Limit,
            InFlightLimitBaseline = _admission.InFlightLimit.Baseline,
            InFlightLimitIncreases = _admission.InFlightLimit.Increases,
            InFlightLimitDecreases = _admission.InFlightLimit.Decreases,
            RejectedQueueFull = _admission.RejectedQueueFull + SumOverNodeLimiters(static l => l.RejectedQueueFull),
            RejectedQueueTimeout = _admission.RejectedQueueTimeout + SumOverNodeLimiters(static l => l.RejectedQueueTimeout),
            LeasesIdle = (int)SumOverLeasePools(static p => p.Idle),
            LeasesUsed = (int)SumOverLeasePools(static p => p.Used),
            LeaseWaiters = (int)SumOverLeasePools(static p => p.Waiters),
            RejectedLeaseTimeout = SumOverLeasePools(static p => p.RejectedTimeout),
            RejectedWaitersFull = SumOverLeasePools(static p => p.RejectedWaitersFull),
            RejectedBudgetExhausted = _budget.Rejected,
            RejectedCircuitOpen = _breaker.RejectedCircuitOpen,
            CircuitState = _breaker.State,
            ReconnectsSuppressed = _breaker.ReconnectsSuppressed,
            LastServerUtilization = _monitor?.Last,
            ServerUtilizationByNode = ServerUtilizationByNode,
            EffectiveMaxConnections = _budget.Limit,
            FleetInstances = _fleet?.Instances is > 0 and var instances ? instances : null,
            FleetMaxConnections = _fleet?.FleetMaxConnections,
            FleetShareChanges = _fleet?.Changes ?? 0,
            SentinelSockets = _sentinel?.Sockets ?? 0,
            SentinelMaster = _sentinel?.Master,
            Nodes = NodeStatistics(),
        };
    }

    private int SumOverNodeLimiters(Func<AdmissionLimiter, long> value)
    {
        long sum = 0;
        if (_nodeAdmission is { } nodes)
        {
            foreach (var limiter in nodes.Limiters.Values)
            {
                sum += value(limiter);
            }
        }

        return (int)sum;
    }

    private List<RedisPoolNodeStatistics> NodeStatistics()
    {
        var roles = _topology.Roles;
        var limiters = _router.NodeLimits?.Limiters;
        var readings = ServerUtilizationByNode;
        var nodes = new List<RedisPoolNodeStatistics>();
        foreach (var budget in _budget.Nodes)
        {
            // The default node is created up front; against a cluster named by another spelling it may hold nothing.
            if (budget.Used == 0 && budget.Rejected == 0 && !roles.ContainsKey(budget.Name))
            {
                continue;
            }

            // A sentinel is no server of the pool's commands: no breaker or monitor reading of the master is its. Under
            // Sentinel only the master's own reading is shown (a lease still held on the old master must not show the new one's).
            var sentinel = budget.UsedBy(SocketRole.Sentinel) > 0;
            RedisServerUtilization? reading = readings.TryGetValue(budget.Name, out var read) ? read : null;
            if (reading is null && !_topology.IsCluster && (_sentinel is null || string.Equals(budget.Name, _sentinel.Master, StringComparison.OrdinalIgnoreCase)))
            {
                reading = _monitor?.Last;
            }

            nodes.Add(new RedisPoolNodeStatistics
            {
                EndPoint = budget.Name,
                Role = sentinel ? RedisPoolNodeRole.Sentinel : roles.TryGetValue(budget.Name, out var role) ? role : RedisPoolNodeRole.Unknown,
                Sockets = budget.Used,
                MultiplexerSockets = budget.UsedBy(SocketRole.Multiplexer),
                LeaseSockets = budget.UsedBy(SocketRole.Lease),
                RejectedBudgetExhausted = budget.Rejected,
                CircuitState = sentinel ? RedisPoolCircuitState.Closed : NodeCircuitState(budget.Name),
                Utilization = sentinel ? null : reading,
            }.WithAdmission(limiters?.GetValueOrDefault(budget.Name)));
        }

        foreach (var (name, role) in roles)
        {
            if (!nodes.Exists(n => string.Equals(n.EndPoint, name, StringComparison.OrdinalIgnoreCase)))
            {
                nodes.Add(new RedisPoolNodeStatistics { EndPoint = name, Role = role, CircuitState = NodeCircuitState(name), Utilization = readings.GetValueOrDefault(name) }
                    .WithAdmission(limiters?.GetValueOrDefault(name)));
            }
        }

        nodes.Sort(static (a, b) => string.CompareOrdinal(a.EndPoint, b.EndPoint));
        return nodes;
    }

    /// <summary>With the fleet budget on, a lease returned while its node holds more than the share is closed instead of kept.</summary>
    private LeasePool WithFleetShare(LeasePool pool)
    {
        if (_fleetEnforcer is { } enforcer)
        {
            pool.CloseOnReturn = () => enforcer.IsOverLimit(pool);
        }

        return pool;
    }

    /// <summary>
    /// The cluster's slots moved or a multiplexer connected: the per-node limiters follow the slot owners. A slot moved
    /// to a known master (a MOVED reply, one per slot during a resharding) updates that slot alone.
    /// </summary>
    private void OnTopologyRefreshed(ConnectionMultiplexer multiplexer, HashSlotMovedEventArgs? moved)
    {
        if (_nodeAdmission is not { } nodes || !_topology.IsCluster || (moved is not null && nodes.Move(moved.HashSlot, moved.NewEndPoint)))
        {
            return;
        }

        if (nodes.Refresh(multiplexer))
        {
            _router.UseNodeLimits(nodes);
        }
    }

    private RedisPoolCircuitState NodeCircuitState(string node) => _topology.IsCluster ? _nodeBreakers.StateOf(node) : _breaker.State;

    /// <summary>
    /// Stops admitting, lets in-flight commands finish within <see cref="RedisPoolOptions.ShutdownGracePeriod"/>,
    /// then closes every socket. Bounded; later calls to the pool throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        lock (_databases)
        {
            _disposal ??= DisposeCoreAsync();
        }

        return new ValueTask(_disposal);
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task DisposeCoreAsync()
    {
        _admission.Close();
        _nodeAdmission?.Close();
        var drained = false;
        try
        {
            // One grace period for both: commands in flight finish while held leases get their chance to come back.
            var draining = _admission.WaitForDrainAsync(_options.ShutdownGracePeriod);
            await Task.WhenAll(_leases.DisposeAsync().AsTask(), _clusterLeases.DisposeAsync().AsTask()).ConfigureAwait(false);
            drained = await draining.ConfigureAwait(false);
        }
        finally
        {
            var sockets = _budget.Used;

            // Removed while a socket is still held to send it on, so the others grow back at their next heartbeat.
            if (_fleet is not null)
            {
                await _fleet.DisposeAsync().ConfigureAwait(false);
            }

            if (_sentinel is not null)
            {
                await _sentinel.DisposeAsync().ConfigureAwait(false);
            }

            if (_monitor is not null)
            {
                await _monitor.DisposeAsync().ConfigureAwait(false);
            }

            await _multiplexers.DisposeAsync().ConfigureAwait(false);
            await _breaker.DisposeAsync().ConfigureAwait(false);
            await _nodeBreakers.DisposeAsync().ConfigureAwait(false);

            // A connect cancelled by the disposal may still be running inside StackExchange.Redis: wait for its socket.
            await _factory.DrainAsync().ConfigureAwait(false);
            _metrics.Dispose();
            Log.Disposed(_logger, Name, sockets, drained ? 0 : _admission.InFlight);
        }
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposal) is not null)
        {
            throw new ObjectDisposedException(nameof(RedisPool), $"Pool '{Name}' is disposed.");
        }
    }

    /// <summary>
    /// Cancels a blocked lease command with <c>CLIENT UNBLOCK</c> over a shared multiplexer (admin-enabled by the
    /// factory). Throws <see cref="NotSupportedException"/> when the server does not permit it: the lease socket is
    /// closed then, which <see cref="ServerPermissions"/> counts and says once.
    /// </summary>
    private async Task<bool> UnblockAsync(long clientId, System.Net.EndPoint? node)
    {
        var permissions = _factory.Permissions;
        if (clientId == 0 || !permissions.Unblock)
        {
            permissions.CancelClosesSocket();
            throw new NotSupportedException("CLIENT ID or CLIENT UNBLOCK is not permitted for this pool's user.");
        }

        var entry = _multiplexers.TryPick() ?? await _multiplexers.PickAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            // In a cluster client ids are per node: the command goes to the lease socket's own node.
            var reply = node is null
                ? await entry.GetDatabase(-1).ExecuteAsync("CLIENT", "UNBLOCK", clientId).ConfigureAwait(false)
                : await entry.Multiplexer.GetServer(node).ExecuteAsync("CLIENT", "UNBLOCK", clientId).ConfigureAwait(false);
            return (long)reply == 1;
        }
        catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
        {
            permissions.UnblockRefused(ex);
            permissions.CancelClosesSocket();
            throw new NotSupportedException("CLIENT UNBLOCK is not permitted for this pool's user.", ex);
        }
    }

    /// <summary>The keyless lease pool and, in a cluster, every master's.</summary>
    private IEnumerable<LeasePool> LeasePools => _clusterLeases.Pools.Prepend(_leases);

    private void TrimIdleLeases()
    {
        foreach (var pool in LeasePools)
        {
            _ = pool.TrimIdleAsync();
        }
    }

    /// <summary>A lease counter summed over <see cref="LeasePools"/>.</summary>
    private long SumOverLeasePools(Func<LeasePool, long> counter)
    {
        long sum = 0;
        foreach (var pool in LeasePools)
        {
            sum += counter(pool);
        }

        return sum;
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs args)
    {
        // A cluster node that fails opens its own breaker only: the other nodes keep their sockets, reconnects and new ones.
        if (_topology.IsCluster)
        {
            _nodeBreakers.OnConnectionFailed(args);
        }
        else
        {
            _breaker.OnConnectionFailed(args);
        }
    }

    private void OnBreakerStateChanged(object? sender, RedisPoolCircuitStateChangedEventArgs args)
    {
        UpdateGrowth();

        // Give the full server headroom: while the breaker is open idle lease sockets go, MinIdle included.
        foreach (var pool in LeasePools)
        {
            _ = pool.OnCircuitStateChanged(args.State);
        }

        RedisPoolActivity.AddCircuitTransition(args);
        CircuitStateChanged?.Invoke(this, args);
    }

    /// <summary>
    /// The budget a breaker's half-open probe to <paramref name="target"/> counts against, in every topology: the
    /// standalone server's, the master's under Sentinel, a cluster node's.
    /// </summary>
    private ConnectionBudget.NodeBudget ProbeBudget(System.Net.EndPoint target) => _budget.Node(RedisConnectionFactory.Format(target));

    /// <summary>Reads one node's rejected_connections over a socket the pool already holds there; never opens one.</summary>
    private async Task<long?> ReadRejectedConnectionsAsync(System.Net.EndPoint node, CancellationToken cancellationToken)
    {
        foreach (var entry in _multiplexers.Entries)
        {
            IServer server;
            try
            {
                server = entry.Multiplexer.GetServer(node);
            }
            catch (ArgumentException)
            {
                continue;
            }

            if (server.IsConnected)
            {
                return await ReadRejectedConnectionsAsync(server, cancellationToken).ConfigureAwait(false);
            }
        }

        return null;
    }

    /// <summary>Reads rejected_connections over a socket the pool already holds; never opens one.</summary>
    private async Task<long?> ReadRejectedConnectionsAsync(CancellationToken cancellationToken)
    {
        var multiplexer = ConnectedMultiplexer();
        if (multiplexer is null)
        {
            return null;
        }

        var server = multiplexer.GetServers().FirstOrDefault(s => s.IsConnected);
        return server is null ? null : await ReadRejectedConnectionsAsync(server, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads one server's rejected_connections (INFO stats) over its socket; null where INFO is refused.</summary>
    private static async Task<long?> ReadRejectedConnectionsAsync(IServer server, CancellationToken cancellationToken)
    {
        try
        {
            var info = await server.InfoAsync("stats").WaitAsync(cancellationToken).ConfigureAwait(false);
            return RedisServerCounterReader.Find(info, "rejected_connections");
        }
        catch (Exception ex) when (ServerPermissions.IsForbidden(ex))
        {
            // The monitor says once that INFO is refused; the breaker classifies from the raw probe alone.
            return null;
        }
    }

    private void UpdateGrowth() =>
        _multiplexers.Scaler.GrowthSuspended = _breaker.State != RedisPoolCircuitState.Closed
            || _monitor?.Level == RedisServerUtilizationLevel.Critical;

    private void StartMonitor()
    {
        try
        {
            if (Volatile.Read(ref _disposal) is null)
            {
                _monitor?.Start();
            }
        }
        catch (ObjectDisposedException)
        {
            // Disposal won the race: there is nothing left to monitor.
        }
    }

    private void StartFleet()
    {
        if (Volatile.Read(ref _disposal) is null)
        {
            _fleet?.Start();
        }
    }

    private ConnectionMultiplexer? ConnectedMultiplexer()
    {
        foreach (var entry in _multiplexers.Entries)
        {
            if (entry.IsConnected)
            {
                return entry.Multiplexer;
            }
        }

        return null;
    }

    // The monitor reads each node over the first of these whose socket to that node is up.
    private IEnumerable<IConnectionMultiplexer> ConnectedMultiplexers()
    {
        foreach (var entry in _multiplexers.Entries)
        {
            if (entry.IsConnected)
            {
                yield return entry.Multiplexer;
            }
        }
    }

    private void OnUtilizationChanged(object? sender, RedisServerUtilizationEventArgs args)
    {
        // At critical the pool stops growing and gives back idle lease sockets.
        UpdateGrowth();
        _fleet?.OnUtilizationChanged(args.Level);
        if (args.Level == RedisServerUtilizationLevel.Critical)
        {
            TrimIdleLeases();
        }

        ServerUtilizationChanged?.Invoke(this, args);
    }
}
