using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using static RedisPoolKit.RedisPoolInstrumentNames;

namespace RedisPoolKit;

/// <summary>
/// One pool's view of the instruments of Meter "RedisPoolKit". Components call the recording methods; each is
/// cheap and does nothing when no listener is enabled. Observable instruments read the pool's lock-free
/// statistics snapshot only when a listener collects.
/// </summary>
/// <remarks>
/// Instruments are created once per <see cref="Meter"/> and shared by every pool on it (tagged by pool name),
/// so several pools in one container, all handed the same factory meter, never register an instrument twice.
/// </remarks>
internal sealed class RedisPoolMetrics : IDisposable
{
    private static readonly string? s_version = typeof(RedisPoolMetrics).Assembly.GetName().Version?.ToString();
    private static readonly Meter s_staticMeter = new(MeterName, s_version);
    private static readonly ConditionalWeakTable<Meter, Instruments> s_instruments = [];

    private readonly Instruments _instruments;
    private readonly Func<RedisPoolStatistics>? _statistics;
    private readonly KeyValuePair<string, object?> _poolTag;
    private readonly KeyValuePair<string, object?>[] _poolTags;
    private readonly KeyValuePair<string, object?>[] _idleTags;
    private readonly KeyValuePair<string, object?>[] _usedTags;
    private readonly KeyValuePair<string, object?>[] _leaseTags;
    private readonly KeyValuePair<string, object?>[] _multiplexerTags;
    private readonly KeyValuePair<string, object?>[][] _circuitTags;
    private readonly ConcurrentDictionary<string, KeyValuePair<string, object?>[]> _serverTags = new(StringComparer.Ordinal);
    private readonly KeyValuePair<string, object?>[] _increaseTags;
    private readonly KeyValuePair<string, object?>[] _decreaseTags;
    private int _disposed;

    public RedisPoolMetrics(string poolName, IMeterFactory? meterFactory, Func<RedisPoolStatistics>? statistics, RedisPoolOptions options)
    {
        PoolName = poolName;
        _statistics = statistics;
        MaxConnections = options.MaxConnections;
        IdleMin = options.Leases.MinIdle;
        IdleMax = options.Leases.MaxLeases;
        Meter = meterFactory?.Create(new MeterOptions(MeterName) { Version = s_version }) ?? s_staticMeter;
        _instruments = s_instruments.GetValue(Meter, static meter => new Instruments(meter));

        _poolTag = new(PoolNameTag, poolName);
        _poolTags = [_poolTag];
        _idleTags = [_poolTag, new(StateTag, StateIdle)];
        _usedTags = [_poolTag, new(StateTag, StateUsed)];
        _leaseTags = [_poolTag, new(RoleTag, Format(SocketRole.Lease))];
        _multiplexerTags = [_poolTag, new(RoleTag, Format(SocketRole.Multiplexer))];
        _increaseTags = [_poolTag, new(LimitDirectionTag, LimitIncrease)];
        _decreaseTags = [_poolTag, new(LimitDirectionTag, LimitDecrease)];
        _circuitTags = Enum.GetValues<RedisPoolCircuitState>()
            .Select(state => new KeyValuePair<string, object?>[] { _poolTag, new(CircuitStateTag, Format(state)) })
            .ToArray();

        if (statistics is not null)
        {
            _instruments.Register(this);
        }
    }

    /// <summary>
    /// Instruments for a component built on its own (unit tests of the admission limiter, the lease pool):
    /// pushed measurements go to the static meter under pool name "default", observable ones report nothing.
    /// </summary>
    public RedisPoolMetrics()
        : this(RedisPoolDefaults.Name, meterFactory: null, statistics: null, new RedisPoolOptions())
    {
    }

    public string PoolName { get; }

    /// <summary>The meter the instruments live on: the factory's when one was given, the static one otherwise.</summary>
    public Meter Meter { get; }

    private int MaxConnections { get; }

    private int IdleMin { get; }

    private int IdleMax { get; }

    /// <summary>Time to open one socket (db.client.connection.create_time).</summary>
    public void RecordCreateTime(TimeSpan elapsed, SocketRole role)
    {
        if (_instruments.CreateTime.Enabled)
        {
            _instruments.CreateTime.Record(elapsed.TotalSeconds, _poolTag, new(RoleTag, Format(role)));
        }
    }

    /// <summary>Time a caller waited for a lease (db.client.connection.wait_time, role lease).</summary>
    public void RecordLeaseWait(TimeSpan elapsed)
    {
        if (_instruments.WaitTime.Enabled)
        {
            _instruments.WaitTime.Record(elapsed.TotalSeconds, _leaseTags);
        }
    }

    /// <summary>Time a lease was held (db.client.connection.use_time).</summary>
    public void RecordLeaseUse(TimeSpan elapsed)
    {
        if (_instruments.UseTime.Enabled)
        {
            _instruments.UseTime.Record(elapsed.TotalSeconds, _poolTag);
        }
    }

    /// <summary>Time a command waited for admission to a shared multiplexer (db.client.connection.wait_time, role multiplexer).</summary>
    public void RecordAdmissionWait(TimeSpan elapsed)
    {
        if (_instruments.WaitTime.Enabled)
        {
            _instruments.WaitTime.Record(elapsed.TotalSeconds, _multiplexerTags);
        }
    }

    /// <summary>A wait for admission or a lease that timed out (db.client.connection.timeouts). Call <see cref="RecordRejected"/> too.</summary>
    public void RecordTimeout(RedisPoolExhaustedReason reason) =>
        _instruments.Timeouts.Add(1, _poolTag, new(ReasonTag, Format(reason)));

    /// <summary>A caller rejected, for any reason including timeouts (redispoolkit.rejected).</summary>
    public void RecordRejected(RedisPoolExhaustedReason reason) =>
        _instruments.Rejected.Add(1, _poolTag, new(ReasonTag, Format(reason)));

    /// <summary>A caller refused because the breaker was open (redispoolkit.rejected, reason circuit_open).</summary>
    public void RecordRejectedCircuitOpen() =>
        _instruments.Rejected.Add(1, _poolTag, new(ReasonTag, CircuitOpenReason));

    /// <summary>
    /// A routed command that faulted (redispoolkit.commands.failed), tagged with the exception's full type name as
    /// OpenTelemetry's <c>error.type</c> asks: a handful of StackExchange.Redis types, so the cardinality stays low.
    /// </summary>
    public void RecordCommandFailed(Exception failure)
    {
        if (_instruments.CommandsFailed.Enabled)
        {
            _instruments.CommandsFailed.Add(1, _poolTag, new(ErrorTypeTag, failure.GetType().FullName));
        }
    }

    /// <summary>A lease suspected of leaking (redispoolkit.leases.leaks_suspected).</summary>
    public void RecordLeakSuspected() => _instruments.LeaksSuspected.Add(1, _poolTag);

    /// <summary>A lease socket closed because its cancelled blocking command could not be unblocked (redispoolkit.leases.unblock_unavailable).</summary>
    public void RecordUnblockUnavailable() => _instruments.UnblockUnavailable.Add(1, _poolTag);

    /// <summary>A breaker transition (redispoolkit.circuit.transitions).</summary>
    public void RecordCircuitTransition(RedisPoolCircuitState from, RedisPoolCircuitState to) =>
        _instruments.CircuitTransitions.Add(1, _poolTag, new(CircuitFromTag, Format(from)), new(CircuitToTag, Format(to)));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _instruments.Unregister(this);
        }
    }

    private sealed class Instruments
    {
        // The database conventions' duration advice: connection setup, waits and use range from ~1 ms to ~10 s.
        private static readonly InstrumentAdvice<double> s_durationAdvice = new()
        {
            HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
        };

        private readonly Lock _lock = new();
        private RedisPoolMetrics[] _pools = [];

        public Instruments(Meter meter)
        {
            CreateTime = meter.CreateHistogram(ConnectionCreateTime, "s", "The time it took to create a new connection.", tags: null, s_durationAdvice);
            WaitTime = meter.CreateHistogram(ConnectionWaitTime, "s", "The time it took to obtain an open connection from the pool (a lease, or admission to a shared multiplexer).", tags: null, s_durationAdvice);
            UseTime = meter.CreateHistogram(ConnectionUseTime, "s", "The time between borrowing a lease and returning it.", tags: null, s_durationAdvice);
            Timeouts = meter.CreateCounter<long>(ConnectionTimeouts, "{timeout}", "The number of waits for a connection (lease or admission) that timed out.");
            Rejected = meter.CreateCounter<long>(RedisPoolInstrumentNames.Rejected, "{request}", "Callers the pool refused, by reason.");
            CircuitTransitions = meter.CreateCounter<long>(RedisPoolInstrumentNames.CircuitTransitions, "{transition}", "Max-clients breaker state changes.");
            LeaksSuspected = meter.CreateCounter<long>(RedisPoolInstrumentNames.LeaksSuspected, "{lease}", "Leases held longer than Leases.LeakDetectionThreshold.");
            UnblockUnavailable = meter.CreateCounter<long>(RedisPoolInstrumentNames.UnblockUnavailable, "{socket}", "Lease sockets closed because a cancelled blocking command could not be unblocked: CLIENT ID or CLIENT UNBLOCK is not permitted.");
            CommandsFailed = meter.CreateCounter<long>(RedisPoolInstrumentNames.CommandsFailed, "{command}", "Commands routed through the pool that failed, by error.type.");

            meter.CreateObservableUpDownCounter(ConnectionCount, () => Observe(static (p, s) => p.ObserveCount(s)), "{connection}", "The number of connections that are currently in the state described by db.client.connection.state.");
            meter.CreateObservableUpDownCounter(ConnectionMax, () => ObserveSettings(static p => [new Measurement<long>(p.MaxConnections, p._poolTags)]), "{connection}", "The maximum number of open connections allowed (MaxConnections, per endpoint).");
            meter.CreateObservableUpDownCounter(ConnectionIdleMin, () => ObserveSettings(static p => [new Measurement<long>(p.IdleMin, p._poolTags)]), "{connection}", "The minimum number of idle open connections allowed (Leases.MinIdle).");
            meter.CreateObservableUpDownCounter(ConnectionIdleMax, () => ObserveSettings(static p => [new Measurement<long>(p.IdleMax, p._poolTags)]), "{connection}", "The maximum number of idle open connections allowed (Leases.MaxLeases).");
            meter.CreateObservableUpDownCounter(ConnectionPendingRequests, () => Observe(static (p, s) => [new Measurement<long>(s.LeaseWaiters, p._leaseTags), new Measurement<long>(s.Queued, p._multiplexerTags)]), "{request}", "The number of callers waiting for a connection: lease waiters and callers queued for admission.");

            meter.CreateObservableUpDownCounter(CommandsInFlight, () => Observe(static (p, s) => [new Measurement<long>(s.InFlight, p._poolTags)]), "{command}", "Commands admitted and not yet completed.");
            meter.CreateObservableUpDownCounter(CommandsQueued, () => Observe(static (p, s) => [new Measurement<long>(s.Queued, p._poolTags)]), "{command}", "Commands waiting for admission.");
            meter.CreateObservableUpDownCounter(InFlightLimit, () => Observe(static (p, s) => p.ObserveInFlightLimit(s)), "{command}", "Commands that may be in flight now: MaxInFlight, or the adaptive limit found from measured latency; in a cluster also each master's own limit (server.address, server.port).");
            meter.CreateObservableGauge(InFlightLimitBaseline, () => ObserveBaseline(), "s", "The no-load command latency the adaptive in-flight limit compares against; in a cluster each master's own (server.address, server.port).");
            meter.CreateObservableCounter(InFlightLimitChanges, () => Observe(static (p, s) => p.ObserveInFlightLimitChanges(s)), "{change}", "Times the adaptive in-flight limit went up or down; in a cluster also each master's own (server.address, server.port).");
            meter.CreateObservableGauge(RedisPoolInstrumentNames.CircuitState, () => Observe(static (p, s) => p.ObserveCircuit(s)), "{state}", "1 for the breaker's current state, 0 for the others.");
            meter.CreateObservableCounter(RedisPoolInstrumentNames.ReconnectsSuppressed, () => Observe(static (p, s) => [new Measurement<long>(s.ReconnectsSuppressed, p._poolTags)]), "{reconnect}", "StackExchange.Redis reconnect attempts the breaker held back.");
            meter.CreateObservableUpDownCounter(RedisPoolInstrumentNames.Multiplexers, () => Observe(static (p, s) => [new Measurement<long>(s.Multiplexers, p._poolTags)]), "{multiplexer}", "Connected shared multiplexers.");

            meter.CreateObservableGauge(ServerConnectedClients, () => Observe(static (p, s) => p.ObserveServers(s, static u => u.ConnectedClients)), "{client}", "The node's connected_clients at the monitor's last reading, per node (server.address, server.port).");
            meter.CreateObservableGauge(ServerMaxClients, () => Observe(static (p, s) => p.ObserveServers(s, static u => u.MaxClients)), "{client}", "The node's maxclients at the monitor's last reading, per node (server.address, server.port).");
            meter.CreateObservableGauge(ServerUtilization, () => ObserveUtilization(), "1", "connected_clients / maxclients at the monitor's last reading, per node (server.address, server.port).");
            meter.CreateObservableCounter(ServerRejectedConnections, () => Observe(static (p, s) => p.ObserveServers(s, static u => u.RejectedConnections)), "{connection}", "The node's rejected_connections (since it started) at the monitor's last reading, per node (server.address, server.port).");
            meter.CreateObservableGauge(ServerBlockedClients, () => Observe(static (p, s) => p.ObserveServers(s, static u => u.BlockedClients)), "{client}", "The node's blocked_clients at the monitor's last reading, per node (server.address, server.port).");

            meter.CreateObservableGauge(RedisPoolInstrumentNames.FleetInstances, () => Observe(static (p, s) => s.FleetInstances is { } n ? [new Measurement<long>(n, p._poolTags)] : []), "{instance}", "Live instances of this service and pool at the last fleet heartbeat.");
            meter.CreateObservableGauge(FleetConnectionLimit, () => Observe(static (p, s) => s.FleetMaxConnections is not null ? [new Measurement<long>(s.EffectiveMaxConnections, p._poolTags)] : []), "{connection}", "This instance's share of Fleet.MaxConnections: the sockets it may open now.");
            meter.CreateObservableCounter(RedisPoolInstrumentNames.FleetShareChanges, () => Observe(static (p, s) => s.FleetMaxConnections is not null ? [new Measurement<long>(s.FleetShareChanges, p._poolTags)] : []), "{change}", "Times this instance's fleet share changed.");
        }

        public Histogram<double> CreateTime { get; }
        public Histogram<double> WaitTime { get; }
        public Histogram<double> UseTime { get; }
        public Counter<long> Timeouts { get; }
        public Counter<long> Rejected { get; }
        public Counter<long> CircuitTransitions { get; }
        public Counter<long> LeaksSuspected { get; }
        public Counter<long> UnblockUnavailable { get; }
        public Counter<long> CommandsFailed { get; }

        public void Register(RedisPoolMetrics pool)
        {
            lock (_lock)
            {
                _pools = [.. _pools, pool];
            }
        }

        public void Unregister(RedisPoolMetrics pool)
        {
            lock (_lock)
            {
                _pools = _pools.Where(p => p != pool).ToArray();
            }
        }

        // Callbacks read a copy-on-write array: collection never takes the lock registration uses.
        private List<Measurement<long>> Observe(Func<RedisPoolMetrics, RedisPoolStatistics, Measurement<long>[]> observe)
        {
            var pools = Volatile.Read(ref _pools);
            var measurements = new List<Measurement<long>>(pools.Length * 2);
            foreach (var pool in pools)
            {
                if (pool.TryGetStatistics(out var statistics))
                {
                    measurements.AddRange(observe(pool, statistics));
                }
            }

            return measurements;
        }

        // Instruments that report the pool's settings need no snapshot.
        private List<Measurement<long>> ObserveSettings(Func<RedisPoolMetrics, Measurement<long>[]> observe)
        {
            var pools = Volatile.Read(ref _pools);
            var measurements = new List<Measurement<long>>(pools.Length);
            foreach (var pool in pools)
            {
                measurements.AddRange(observe(pool));
            }

            return measurements;
        }

        private List<Measurement<double>> ObserveBaseline()
        {
            var pools = Volatile.Read(ref _pools);
            var measurements = new List<Measurement<double>>(pools.Length);
            foreach (var pool in pools)
            {
                if (!pool.TryGetStatistics(out var statistics))
                {
                    continue;
                }

                if (statistics.InFlightLimitBaseline is { } baseline)
                {
                    measurements.Add(new Measurement<double>(baseline.TotalSeconds, pool._poolTags));
                }

                foreach (var node in statistics.Nodes)
                {
                    if (node.InFlightLimitBaseline is { } nodeBaseline)
                    {
                        measurements.Add(new Measurement<double>(nodeBaseline.TotalSeconds, pool.NodeTags(node.EndPoint)));
                    }
                }
            }

            return measurements;
        }

        private List<Measurement<double>> ObserveUtilization()
        {
            var pools = Volatile.Read(ref _pools);
            var measurements = new List<Measurement<double>>(pools.Length);
            foreach (var pool in pools)
            {
                if (pool.TryGetStatistics(out var statistics))
                {
                    foreach (var reading in Servers(statistics))
                    {
                        if (reading.Utilization is { } utilization)
                        {
                            measurements.Add(new Measurement<double>(utilization, pool.ServerTags(reading)));
                        }
                    }
                }
            }

            return measurements;
        }
    }

    private bool TryGetStatistics([NotNullWhen(true)] out RedisPoolStatistics? statistics)
    {
        if (_statistics is null)
        {
            statistics = null;
            return false;
        }

        try
        {
            statistics = _statistics();
            return true;
        }
#pragma warning disable CA1031 // A pool being built or torn down must not break collection for every other pool.
        catch (Exception)
#pragma warning restore CA1031
        {
            statistics = null;
            return false;
        }
    }

    /// <summary>The readings the server gauges report: one per node, or the last reading alone when no per-node view was given.</summary>
    private static IEnumerable<RedisServerUtilization> Servers(RedisPoolStatistics statistics) =>
        statistics.ServerUtilizationByNode is { Count: > 0 } nodes ? nodes.Values
        : statistics.LastServerUtilization is { } last ? [last]
        : [];

    private Measurement<long>[] ObserveServers(RedisPoolStatistics statistics, Func<RedisServerUtilization, long?> value)
    {
        var measurements = new List<Measurement<long>>(1);
        foreach (var reading in Servers(statistics))
        {
            if (value(reading) is { } measured)
            {
                measurements.Add(new Measurement<long>(measured, ServerTags(reading)));
            }
        }

        return [.. measurements];
    }

    /// <summary>The pool's limit, and in a cluster each master's own limit tagged with the node.</summary>
    private Measurement<long>[] ObserveInFlightLimit(RedisPoolStatistics statistics)
    {
        var measurements = new List<Measurement<long>>(1 + statistics.Nodes.Count) { new(statistics.InFlightLimit, _poolTags) };
        foreach (var node in statistics.Nodes)
        {
            if (node.InFlightLimit is { } limit)
            {
                measurements.Add(new Measurement<long>(limit, NodeTags(node.EndPoint)));
            }
        }

        return [.. measurements];
    }

    /// <summary>The pool limit's changes, and in a cluster each master's, tagged with the node and the direction.</summary>
    private Measurement<long>[] ObserveInFlightLimitChanges(RedisPoolStatistics statistics)
    {
        var measurements = new List<Measurement<long>>(2) { new(statistics.InFlightLimitIncreases, _increaseTags), new(statistics.InFlightLimitDecreases, _decreaseTags) };
        foreach (var node in statistics.Nodes)
        {
            if (node.InFlightLimit is not null)
            {
                var tags = NodeTags(node.EndPoint);
                KeyValuePair<string, object?>[] up = [.. tags, _increaseTags[^1]];
                KeyValuePair<string, object?>[] down = [.. tags, _decreaseTags[^1]];
                measurements.Add(new Measurement<long>(node.InFlightLimitIncreases, up));
                measurements.Add(new Measurement<long>(node.InFlightLimitDecreases, down));
            }
        }

        return [.. measurements];
    }

    /// <summary>The pool's tag plus OpenTelemetry's server.address and server.port for the node the reading came from, cached per node.</summary>
    private KeyValuePair<string, object?>[] ServerTags(RedisServerUtilization reading) =>
        reading.EndPoint is not { } endPoint ? _poolTags : NodeTags(endPoint);

    /// <summary>The pool's tag plus OpenTelemetry's server.address and server.port for <paramref name="endPoint"/> ("host:port"), cached per node.</summary>
    private KeyValuePair<string, object?>[] NodeTags(string endPoint) =>
        _serverTags.GetOrAdd(endPoint, static (node, poolTag) =>
            {
                var (address, port) = SplitEndPoint(node);
                return port is { } p
                    ? [poolTag, new(ServerAddressTag, address), new(ServerPortTag, p)]
                    : [poolTag, new(ServerAddressTag, address)];
            }, _poolTag);

    /// <summary>"host:port" or "[v6]:port" into host and port; a node without a port keeps its whole name as the address.</summary>
    internal static (string Address, int? Port) SplitEndPoint(string endPoint)
    {
        var colon = endPoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endPoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            || (endPoint.Contains(':', StringComparison.Ordinal) && endPoint.IndexOf(':', StringComparison.Ordinal) != colon && endPoint[0] != '['))
        {
            return (endPoint, null);
        }

        var host = endPoint[..colon];
        return (host.Length > 1 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host, port);
    }

    private Measurement<long>[] ObserveCount(RedisPoolStatistics statistics)
    {
        var idle = statistics.LeasesIdle;
        var used = Math.Max(0, statistics.Sockets - idle);
        return [new Measurement<long>(used, _usedTags), new Measurement<long>(idle, _idleTags)];
    }

    private Measurement<long>[] ObserveCircuit(RedisPoolStatistics statistics)
    {
        var measurements = new Measurement<long>[_circuitTags.Length];
        for (var i = 0; i < measurements.Length; i++)
        {
            measurements[i] = new Measurement<long>((int)statistics.CircuitState == i ? 1 : 0, _circuitTags[i]);
        }

        return measurements;
    }
}
