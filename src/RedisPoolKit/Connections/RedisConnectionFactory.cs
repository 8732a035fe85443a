using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using StackExchange.Redis.Configuration;

namespace RedisPoolKit;

/// <summary>
/// The one place the pool opens sockets. Each creation asks the breaker, reserves budget slots, and connects
/// within <see cref="RedisPoolOptions.ConnectTimeout"/>; the slots are only given back once the socket is
/// really gone, even when a connect that timed out completes later.
/// </summary>
internal sealed class RedisConnectionFactory
{
    // The pool's own wait ends at ConnectTimeout; StackExchange.Redis gets this much longer, so the pool's deadline is
    // the one that decides (and names 'ConnectTimeout'), and the caller's answer includes the breaker's verdict when
    // it is quick. Measured: StackExchange.Redis alone gave up anywhere from 999 to 1014 ms at a 1 s timeout.
    private static readonly TimeSpan s_connectSlack = TimeSpan.FromMilliseconds(250);

    private readonly RedisPoolOptions _options;
    private readonly ConfigurationOptions _template;
    private readonly ConnectionBudget _budget;
    private readonly MaxClientsBreaker _breaker;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly RedisPoolMetrics? _metrics;

    // Failed connects whose slots are still held: the breaker classifying them, or a connect still running after we
    // stopped waiting for it. Disposal drains them, so no socket of the pool outlives it.
    private readonly Lock _pendingLock = new();
    private readonly HashSet<Task> _pending = [];

    public RedisConnectionFactory(RedisPoolOptions options, ConfigurationOptions configuration, ConnectionBudget budget, MaxClientsBreaker breaker, TimeProvider timeProvider, ILogger logger, RedisPoolMetrics? metrics = null)
    {
        _metrics = metrics;
        _options = options;
        _budget = budget;
        _breaker = breaker;
        _timeProvider = timeProvider;
        _logger = logger;
        // Parsed once by the validator and shared with the breaker's endpoints: never modified here, each socket connects with a clone.
        _template = configuration;
        _endPointsText = string.Join(",", _template.EndPoints.Select(e => Format(e)));
        ClientNamePrefix = RedisClientNames.Prefix(options.ServiceName, options.InstanceId ?? RedisClientNames.DefaultInstanceId, options.Name);
        Permissions = new ServerPermissions(options.Name, logger, metrics);
    }

    /// <summary>The nodes the pool knows besides the default one: a new connection reserves a slot on each before connecting.</summary>
    public Func<IEnumerable<string>>? KnownNodes { get; set; }

    /// <summary>True when failures are classified per node (a cluster): a failed connect then does not trip the pool's breaker.</summary>
    public Func<bool>? ClassifiesPerNode { get; set; }

    /// <summary>The per-node breakers, asked before every socket to a node; null when one breaker serves the pool.</summary>
    public INodeGate? NodeGate { get; set; }

    /// <summary>In a cluster: the breaker of the node at an endpoint, which classifies its failed reconnects.</summary>
    public Func<System.Net.EndPoint, MaxClientsBreaker>? NodeBreakerFor { get; set; }

    /// <summary>The pool features the server's permissions allow, found out on the pool's own sockets.</summary>
    public ServerPermissions Permissions { get; }

    /// <summary>
    /// Runs <see cref="RedisPoolOptions.ConfigureOptions"/> on the parsed configuration, once, before any part of
    /// the pool reads it; the settings the pool owns are applied after it on every socket (<see cref="BuildConfiguration"/>).
    /// </summary>
    public static void ApplyConfigureOptions(RedisPoolOptions options, ConfigurationOptions configuration) =>
        options.ConfigureOptions?.Invoke(configuration);

    /// <summary>
    /// The configuration a multiplexer of this pool connects with, as StackExchange.Redis writes it, with the
    /// password (and so any token used as one) replaced by <c>*****</c>.
    /// </summary>
    public string RedactedConfiguration => BuildConfiguration(SocketRole.Multiplexer, RedisClientNames.Build(ClientNamePrefix, SocketRole.Multiplexer, 0)).ToString(includePassword: false);

    private volatile string _endPointsText;

    /// <summary>The endpoints sockets open to, for messages (never the configuration string: it may hold a password).</summary>
    public string EndPointsText => _endPointsText;

    /// <summary>
    /// Runs before every socket opens (after the pool's disposal check, before the breaker and the budget): under
    /// Sentinel it learns the master first, and holds lease sockets back while a failover is under way.
    /// </summary>
    public Func<SocketRole, CancellationToken, ValueTask>? BeforeConnect { get; set; }

    /// <summary>
    /// Points every socket opened from now on at <paramref name="master"/> alone, without Sentinel. The breaker probes
    /// the same endpoint list, so it follows too. Sockets already open are the caller's to retire.
    /// </summary>
    public void Retarget(System.Net.EndPoint master)
    {
        lock (_pendingLock)
        {
            _template.ServiceName = null;
            if (_template.EndPoints.Count == 1)
            {
                _template.EndPoints[0] = master;
            }
            else
            {
                _template.EndPoints.Clear();
                _template.EndPoints.Add(master);
            }

            _endPointsText = Format(master);
        }

        // The breaker probes the first endpoint: what it learnt of the old server must not keep the new one shut.
        _breaker.OnServerMoved($"the pool moved to {Format(master)}");
    }

    /// <summary>The <c>CLIENT SETNAME</c> prefix shared by every socket of this pool.</summary>
    public string ClientNamePrefix { get; }

    /// <summary>True when a multiplexer's subscriptions share its one socket with its commands (RESP3).</summary>
    public bool SharesSubscriptionSocket => _options.SharedSubscriptionConnection;

    public int SlotsFor(SocketRole role) =>
        role == SocketRole.Multiplexer && !_options.SharedSubscriptionConnection ? 2 : 1;

    /// <summary>
    /// Opens one lease socket to <paramref name="node"/> alone, one master of a cluster: StackExchange.Redis is not
    /// allowed <c>CLUSTER</c> on it, so it neither discovers nor connects the other nodes, and a <c>MOVED</c> or
    /// <c>ASK</c> reply fails the command instead of opening a socket to the node it names.
    /// </summary>
    public Task<PooledConnection> ConnectLeaseAsync(System.Net.EndPoint node, int index, CancellationToken cancellationToken) =>
        ConnectAsync(SocketRole.Lease, index, cancellationToken, node);

    /// <summary>Opens one connection of <paramref name="role"/>, or throws a pool exception naming what stopped it.</summary>
    public async Task<PooledConnection> ConnectAsync(SocketRole role, int index, CancellationToken cancellationToken, System.Net.EndPoint? node = null)
    {
        if (BeforeConnect is { } beforeConnect)
        {
            await beforeConnect(role, cancellationToken).ConfigureAwait(false);
        }

        var target = node is null ? EndPointsText : Format(node);
        _breaker.ThrowIfOpen(target);

        // A socket to one cluster node whose breaker is open would be refused in its tunnel, which StackExchange.Redis
        // does not report: the connection would come back unconnected. Refused here, at once and naming the node.
        if (node is not null && NodeGate?.Refusal(target, $"did not open a {RedisClientNames.RolePrefix(role)} socket to node {target}") is { } nodeOpen)
        {
            throw nodeOpen;
        }

        var slots = SlotsFor(role);
        var clientName = RedisClientNames.Build(ClientNamePrefix, role, index);
        var sockets = new NodeSockets(_budget, role, NodeGate, (node, budget) => Log.NodeSocketRefused(_logger, _options.Name, RedisClientNames.RolePrefix(role), clientName, node, budget, _budget.Max), _timeProvider, _options.ConnectTimeout, OnReconnectFailedAsync);
        // A lease to one cluster node pays on that node only; any other connection on every endpoint it is configured
        // with (the master alone under Sentinel) and every node the pool already knows of.
        IEnumerable<string> nodes = node is not null ? [target] : KnownNodes is { } known ? EndPointsText.Split(',').Concat(known()) : EndPointsText.Split(',');
        if (!sockets.TryPrepay(nodes, slots, out var full))
        {
            _metrics?.RecordRejected(RedisPoolExhaustedReason.BudgetExhausted);
            throw new RedisPoolExhaustedException(
                RedisPoolExhaustedReason.BudgetExhausted,
                $"Pool '{_options.Name}' cannot open a {RedisClientNames.RolePrefix(role)} socket to {full}: {_budget.Node(full).Describe()}. Raise 'MaxConnections' (currently {_budget.Max}) or lower 'MaxMultiplexers'/'Leases.MaxLeases'.");
        }

        var config = BuildConfiguration(role, clientName, sockets);
        if (node is not null)
        {
            ToSingleNode(config, node);
        }

        var started = _timeProvider.GetTimestamp();
        using var activity = RedisPoolActivity.StartSocketCreate(_options.Name, role, target);
        Task<ConnectionMultiplexer>? connecting = null;
        try
        {
            connecting = ConnectionMultiplexer.ConnectAsync(config);
            var multiplexer = await connecting.WaitAsync(_options.ConnectTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            await Permissions.CheckClientNameAsync(multiplexer, clientName, _options.ConnectTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            var connection = new PooledConnection(multiplexer, _budget, role, index, slots, clientName, started, sockets)
            {
                Node = config.EndPoints.Count == 1 ? Format(config.EndPoints[0]) : null,
            };
            // A socket of it lost later counts as down (the breaker's probe may stand in for it); one connected again
            // shows the server has room, as a new socket does.
            sockets.Watch(multiplexer, OnSocketRestored);
            _breaker.OnSocketOpened();
            var elapsed = _timeProvider.GetElapsedTime(started);
            _metrics?.RecordCreateTime(elapsed, role);
            Log.SocketOpened(_logger, _options.Name, clientName, target, elapsed.TotalMilliseconds);
            return connection;
        }
        catch (Exception ex)
        {
            RedisPoolActivity.SetFailed(activity, ex);
            var elapsed = _timeProvider.GetElapsedTime(started);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                _ = Track(ReleaseWhenGoneAsync(connecting, sockets, failure: null));
                throw;
            }

            // The breaker classifies the failure (with at most one raw probe socket) while this socket's slots are
            // still held: the probe stands in for the socket that failed. The caller waits for the verdict only
            // within what is left of ConnectTimeout + slack; the classification finishes in the background.
            var classified = Track(ReleaseWhenGoneAsync(connecting, sockets, failure: ex));
            var left = _options.ConnectTimeout + s_connectSlack - elapsed;
            if (left > TimeSpan.Zero)
            {
                // WaitAsync drops its timer once the verdict is in; the verdict, a timeout or a cancellation all end the wait alike.
                await classified.WaitAsync(left, _timeProvider, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            var cause = ex switch
            {
                TimeoutException when sockets.LastRefusal is { } refusal => $"no connection within 'ConnectTimeout' ({RedisPoolOptionsValidator.Format(_options.ConnectTimeout)}): the pool refused the socket to {refusal}",
                TimeoutException => $"no connection within 'ConnectTimeout' ({RedisPoolOptionsValidator.Format(_options.ConnectTimeout)}); raise it if the server is slow to accept",
                RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure } when _template.Ssl =>
                    "the TLS handshake or authentication failed: the server's certificate was rejected (check 'sslHost', the CA and any CertificateValidation callback in 'ConfigureOptions'), or the server refused the client certificate or password. " + WithoutAbortConnectAdvice(ex.Message),
                _ => WithoutAbortConnectAdvice(ex.Message),
            };
            Log.SocketFailed(_logger, _options.Name, clientName, target, elapsed.TotalMilliseconds, cause);
            throw new RedisPoolException(
                $"Pool '{_options.Name}' could not connect a {RedisClientNames.RolePrefix(role)} socket to {target} after {elapsed.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)} ms: {cause}",
                ex);
        }
    }

    // In a cluster the node's own breaker classifies; elsewhere the pool's.
    private Task<bool> OnReconnectFailedAsync(System.Net.EndPoint endPoint) =>
        ClassifiesPerNode?.Invoke() == true
            ? NodeBreakerFor?.Invoke(endPoint).OnReconnectFailedAsync(endPoint) ?? Task.FromResult(true)
            : _breaker.OnReconnectFailedAsync(endPoint);

    private void OnSocketRestored(System.Net.EndPoint endPoint)
    {
        if (ClassifiesPerNode?.Invoke() == true)
        {
            return;
        }

        _breaker.OnSocketOpened();
    }

    /// <summary>
    /// Waits for every failed connect to give its slots back (pool disposal), bounded by ConnectTimeout + twice the
    /// slack: StackExchange.Redis ends a connect still running by ConnectTimeout + slack.
    /// </summary>
    public async Task DrainAsync()
    {
        Task[] pending;
        lock (_pendingLock)
        {
            pending = [.. _pending];
        }

        if (pending.Length > 0)
        {
            await Task.WhenAll(pending).WaitAsync(_options.ConnectTimeout + s_connectSlack + s_connectSlack, _timeProvider).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private Task Track(Task task)
    {
        lock (_pendingLock)
        {
            _pending.Add(task);
        }

        _ = task.ContinueWith(
            static (done, state) =>
            {
                var factory = (RedisConnectionFactory)state!;
                lock (factory._pendingLock)
                {
                    factory._pending.Remove(done);
                }
            },
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return task;
    }

    /// <summary>Lets the breaker classify <paramref name="failure"/>, waits out a connect still running, then gives the slots back. Never throws.</summary>
    private async Task ReleaseWhenGoneAsync(Task<ConnectionMultiplexer>? connecting, NodeSockets sockets, Exception? failure)
    {
        try
        {
            // In a cluster the failed node's breaker learns of it from the multiplexers' own reconnects: one full node must not stop the others.
            if (failure is not null && ClassifiesPerNode?.Invoke() != true)
            {
                try
                {
                    await _breaker.OnSocketFailedAsync(failure, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Log.BreakerClassificationFailed(_logger, _options.Name, ex);
                }
            }

            if (connecting is not null)
            {
                var late = await connecting.ConfigureAwait(false);
                await late.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // The connect failed after we stopped waiting: nothing was opened.
        }
        finally
        {
            sockets.Close();
        }
    }

    private ConfigurationOptions BuildConfiguration(SocketRole role, string clientName, NodeSockets? sockets = null)
    {
        ConfigurationOptions config;
        lock (_pendingLock)
        {
            config = _template.Clone();
        }

        // Every socket StackExchange.Redis opens, to any node and on any reconnect, takes its slot on that node first.
        if (sockets is not null)
        {
            config.Tunnel = new NodeBudgetTunnel(sockets, _template.Tunnel);
        }

        var shared = role != SocketRole.Multiplexer || _options.SharedSubscriptionConnection;
        if (shared)
        {
            config.Protocol = RedisProtocol.Resp3;
            config.SharedSubscriptionConnection = true;

            // StackExchange.Redis subscribes its configuration channel on every connect; on a shared socket that one
            // subscription makes the server apply its pub/sub output limit to ordinary replies, and a 32 MB GET
            // closes the socket under every command in flight. The socket stays an ordinary client until the
            // application subscribes through the facade (which says so once).
            config.ConfigurationChannel = string.Empty;

            // For the same reason: Azure Cache for Redis's defaults (picked for *.redis.cache.windows.net) subscribe its
            // AzureRedisEvents maintenance channel on every connect.
            if (config.Defaults.GetType() == typeof(AzureOptionsProvider))
            {
                config.Defaults = AzureOptionsWithoutSubscription.Instance;
            }
        }

        // The pool's bounded admission queue replaces StackExchange.Redis's unbounded backlog: queued while disconnected, a
        // command would wait out AsyncTimeout and hide a dead socket behind seconds of latency.
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.AbortOnConnectFail = true;
        config.ConnectRetry = 1;
        config.ConnectTimeout = (int)Math.Min(int.MaxValue, (_options.ConnectTimeout + s_connectSlack).TotalMilliseconds);
        config.ClientName = clientName;
        config.LibraryName = "SE.Redis-" + RedisClientNames.LibrarySuffix;
        // INFO (monitor, classification) and CLIENT UNBLOCK (lease cancellation) are admin commands for StackExchange.Redis.
        config.AllowAdmin = true;
        config.ReconnectRetryPolicy = _breaker.ReconnectRetryPolicy;
        if (role == SocketRole.Lease)
        {
            var timeout = (int)_options.Leases.CommandTimeout.TotalMilliseconds;
            config.SyncTimeout = timeout;
            config.AsyncTimeout = timeout;
        }

        return config;
    }

    /// <summary>Points a lease socket's configuration at one cluster node, and keeps it there (see <see cref="ConnectLeaseAsync"/>).</summary>
    private static void ToSingleNode(ConfigurationOptions config, System.Net.EndPoint node)
    {
        config.EndPoints.Clear();
        config.EndPoints.Add(node);
        config.CommandMap = WithoutCluster(config.CommandMap);

        // The lease reads where a redirect points from the exception's text.
        config.IncludeDetailInExceptions = true;
    }

    /// <summary>
    /// <paramref name="map"/> with <c>CLUSTER</c> disabled: without it StackExchange.Redis cannot learn the slot map and
    /// keeps to the one endpoint it was given. The configuration's own renames and disabled commands are kept (a
    /// <see cref="CommandMap"/> shows them only as its text, <c>$NAME=value</c> pairs).
    /// </summary>
    internal static CommandMap WithoutCluster(CommandMap map)
    {
        var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var delta in map.ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = delta.IndexOf('=', StringComparison.Ordinal);
            if (delta.StartsWith('$') && equals > 1)
            {
                overrides[delta[1..equals]] = delta[(equals + 1)..];
            }
        }

        overrides["CLUSTER"] = string.Empty;
        return CommandMap.Create(overrides);
    }

    /// <summary>
    /// StackExchange.Redis advises <c>abortConnect=false</c> on a failed connect; inside the pool that advice is
    /// wrong (the pool retries under its breaker, and abortConnect=false is the reconnect storm), so it is cut.
    /// </summary>
    internal static string WithoutAbortConnectAdvice(string message)
    {
        var advice = message.IndexOf(" To allow this multiplexer to continue retrying", StringComparison.Ordinal);
        return advice < 0 ? message : message[..advice];
    }

    /// <summary>Azure Cache for Redis's defaults, without the maintenance-events subscription it makes after each connect.</summary>
    private sealed class AzureOptionsWithoutSubscription : AzureOptionsProvider
    {
        public static readonly AzureOptionsWithoutSubscription Instance = new();

        public override Task AfterConnectAsync(ConnectionMultiplexer muxer, Action<string> log) => Task.CompletedTask;
    }

    internal static string Format(System.Net.EndPoint endPoint) => endPoint switch
    {
        System.Net.DnsEndPoint dns => $"{dns.Host}:{dns.Port.ToString(CultureInfo.InvariantCulture)}",
        _ => endPoint.ToString() ?? "?",
    };
}
