using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Keeps the pool on the master a set of sentinels names for one service. The pool's sockets connect to the master
/// directly (StackExchange.Redis's own Sentinel handling is not in charge). The follower holds one socket to each
/// sentinel, learns the master through them, and listens to their failover events: from the moment a failover of the
/// master starts it holds new commands in the admission queue, and when Sentinel switches the master it moves every
/// socket to the new one and lets them go. Commands are never sent to a master that is being replaced, so none the old
/// master acknowledges can be dropped when Sentinel turns it into a replica. Each sentinel socket holds a slot of the
/// budget on its sentinel's node for as long as it is open, and the budget's default node follows the master.
/// </summary>
internal sealed class SentinelFollower : IAsyncDisposable
{
    // The events a sentinel publishes while it fails a master over, before the switch: seeing any of them means
    // writes to the current master may be lost. Sentinel's timer runs at about 10 Hz, so the first (+try-failover)
    // comes a few hundred milliseconds before the replica is promoted.
    private static readonly string[] s_failoverEvents =
    [
        "+try-failover", "+elected-leader", "+failover-state-select-slave", "+selected-slave",
        "+failover-state-send-slaveof-noone", "+failover-state-wait-promotion", "+promoted-slave",
        "+failover-state-reconf-slaves", "+failover-end", "+failover-end-for-timeout",
    ];

    private static readonly string[] s_abortEvents =
    [
        "-failover-abort-not-elected", "-failover-abort-no-good-slave", "-failover-abort-slave-timeout", "-failover-abort-master-is-back",
    ];

    private const string SwitchMaster = "+switch-master";

    // StackExchange.Redis's CommandMap.Sentinel, plus CLIENT: the sentinel socket carries the pool's client name like every other.
    private static readonly CommandMap s_sentinelCommands = CommandMap.Create(
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "auth", "hello", "ping", "info", "role", "sentinel", "client", "subscribe", "psubscribe", "unsubscribe", "punsubscribe" },
        available: true);

    // Used only when no sentinel tells its failover-timeout (Sentinel's own default is 3 minutes).
    private static readonly TimeSpan s_defaultFailoverTimeout = TimeSpan.FromSeconds(60);
    // Sentinel checks the failover-timeout on its 10 Hz timer and may still see the promotion until it gives up, which
    // it announces (-failover-abort-slave-timeout) a few hundred milliseconds after the timeout: the pool's own timer
    // waits this much longer, so it never resumes on the old master while the replica may still be promoted.
    private static readonly TimeSpan s_failoverTimeoutSlack = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_drainBound = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_roleCheckBound = TimeSpan.FromSeconds(2);

    private readonly string _poolName;
    private readonly string _serviceName;
    private readonly EndPoint[] _sentinels;
    private readonly ConfigurationOptions _template;
    private readonly RedisConnectionFactory _factory;
    private readonly ConnectionBudget _budget;
    private readonly AdmissionLimiter _admission;
    private readonly MultiplexerSet _multiplexers;
    private readonly LeasePool _leases;
    private readonly RedisPoolOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _switching = new(1, 1);
    private readonly CancellationTokenSource _disposing = new();
    private readonly HashSet<string> _failingOver = [];
    private readonly List<(ConnectionMultiplexer Connection, string Node)> _connections = [];
    private Task? _started;
    private EndPoint? _master;
    private string _masterText = "?";
    private TimeSpan _failoverTimeout = s_defaultFailoverTimeout;
    private TaskCompletionSource _released = CompletedSource();
    private long _heldSince;
    private ITimer? _holdTimer;

    public SentinelFollower(
        ConfigurationOptions configuration,
        RedisConnectionFactory factory,
        ConnectionBudget budget,
        AdmissionLimiter admission,
        MultiplexerSet multiplexers,
        LeasePool leases,
        RedisPoolOptions options,
        TimeProvider timeProvider,
        ILogger logger)
    {
        _serviceName = configuration.ServiceName!;
        _sentinels = [.. configuration.EndPoints];
        _template = configuration.Clone();
        _factory = factory;
        _budget = budget;
        _admission = admission;
        _multiplexers = multiplexers;
        _leases = leases;
        _options = options;
        _poolName = options.Name;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>The sentinels' endpoints, as configured.</summary>
    public string SentinelsText => string.Join(",", _sentinels.Select(RedisConnectionFactory.Format));

    /// <summary>The master the pool's sockets open to, once known ("host:port").</summary>
    public string? Master => _master is null ? null : _masterText;

    /// <summary>Sockets open to sentinels now (one per sentinel at most).</summary>
    public int Sockets
    {
        get
        {
            lock (_lock)
            {
                return _connections.Count(c => c.Connection.IsConnected);
            }
        }
    }

    /// <summary>Raised with the old master ("host:port") once the pool's multiplexers have left it for a new one.</summary>
    public event Action<string>? MasterLeft;

    /// <summary>True while new commands are held for a failover.</summary>
    public bool IsHolding => _admission.HeldFor is not null;

    /// <summary>
    /// The factory's hook before every socket: learns the master at first use; while a failover is under way, a lease
    /// socket waits for its end (bounded by ConnectTimeout), so it does not open to the master being replaced.
    /// </summary>
    public async ValueTask BeforeConnectAsync(SocketRole role, CancellationToken cancellationToken)
    {
        Task started;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
            if (_started is not { IsFaulted: false, IsCanceled: false })
            {
                _started = StartAsync();
            }

            started = _started;
        }

        await started.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (role != SocketRole.Lease)
        {
            return;
        }

        Task released;
        lock (_lock)
        {
            released = _released.Task;
        }

        if (!released.IsCompleted)
        {
            try
            {
                await released.WaitAsync(_options.ConnectTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                throw new RedisPoolException(
                    $"Pool '{_poolName}' did not open a lease socket: Sentinel is failing over '{_serviceName}' away from {_masterText} and the failover did not end within 'ConnectTimeout' ({RedisPoolOptionsValidator.Format(_options.ConnectTimeout)}). Retry once it has ended.",
                    ex);
            }
        }
    }

    private async Task StartAsync()
    {
        var connects = _sentinels.Select((endPoint, index) => ConnectSentinelAsync(endPoint, index)).ToArray();
        await ((Task)Task.WhenAll(connects)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var failures = new List<string>();
        foreach (var (connect, endPoint) in connects.Zip(_sentinels))
        {
            if (connect.IsCompletedSuccessfully)
            {
                lock (_lock)
                {
                    _connections.Add(connect.Result);
                }
            }
            else
            {
                failures.Add($"{RedisConnectionFactory.Format(endPoint)}: {connect.Exception?.InnerException?.Message ?? "canceled"}");
            }
        }

        // Subscribed before asking for the master, so a switch between the answer and the subscription cannot be missed.
        var (master, failoverTimeout) = await AskMasterAsync(failures).ConfigureAwait(false);
        if (master is null)
        {
            await CloseConnectionsAsync().ConfigureAwait(false);
            throw new RedisPoolException(
                $"Pool '{_poolName}' could not learn the master of '{_serviceName}' from the sentinels {SentinelsText}: {(failures.Count == 0 ? "none of them knows the service name ('serviceName' in the configuration)" : string.Join("; ", failures))}.");
        }

        _failoverTimeout = failoverTimeout ?? s_defaultFailoverTimeout;
        SetMaster(master);
        Log.SentinelMasterFound(_logger, _poolName, _serviceName, _masterText, Sockets, SentinelsText);
    }

    private async Task<(ConnectionMultiplexer Connection, string Node)> ConnectSentinelAsync(EndPoint endPoint, int index)
    {
        // The socket counts against its sentinel like any other against its server; the slot comes back when it closes.
        var node = RedisConnectionFactory.Format(endPoint);
        if (!_budget.TryReserve(node, SocketRole.Sentinel))
        {
            throw new RedisPoolExhaustedException(
                RedisPoolExhaustedReason.BudgetExhausted,
                $"Pool '{_poolName}' cannot open a sentinel socket to {node}: {_budget.Node(node).Describe()}. Raise 'MaxConnections' (currently {_budget.Max}).");
        }

        try
        {
            return (await ConnectSentinelCoreAsync(endPoint, index).ConfigureAwait(false), node);
        }
        catch
        {
            _budget.Release(node, SocketRole.Sentinel);
            throw;
        }
    }

    private async Task<ConnectionMultiplexer> ConnectSentinelCoreAsync(EndPoint endPoint, int index)
    {
        var config = new ConfigurationOptions
        {
            CommandMap = s_sentinelCommands,
            Protocol = RedisProtocol.Resp3,
            SharedSubscriptionConnection = true,
            ConfigurationChannel = string.Empty,
            AbortOnConnectFail = true,
            ConnectRetry = 1,
            ConnectTimeout = (int)Math.Min(int.MaxValue, _options.ConnectTimeout.TotalMilliseconds),
            BacklogPolicy = BacklogPolicy.FailFast,
            ClientName = $"{_factory.ClientNamePrefix}sentinel{index.ToString(CultureInfo.InvariantCulture)}",
            LibraryName = "SE.Redis-" + RedisClientNames.LibrarySuffix,
            Ssl = _template.Ssl,
            SslHost = _template.SslHost,

            // As StackExchange.Redis authenticates to sentinels: sentinelUser/sentinelPassword, else user/password.
            User = _template.SentinelUser,
            Password = _template.SentinelPassword,
        };
        config.EndPoints.Add(endPoint);
        ConnectionMultiplexer connection;
        try
        {
            connection = await ConnectionMultiplexer.ConnectAsync(config).WaitAsync(_options.ConnectTimeout, _timeProvider, _disposing.Token).ConfigureAwait(false);
        }
        catch (RedisConnectionException ex) when (RefusedAuthentication(ex))
        {
            throw new RedisPoolException(
                $"the sentinel refused the pool's credentials ({(config.Password is null ? "none were given" : config.User is null ? "a password, as the default user" : $"user '{config.User}' with a password")}): set 'sentinelPassword' (and 'sentinelUser' for an ACL user) in the configuration when the sentinels' credentials differ from the master's 'password' and 'user' (it answered: {ex.InnerException?.Message ?? ex.Message})",
                ex);
        }

        try
        {
            var source = RedisConnectionFactory.Format(endPoint);
            var subscriber = connection.GetSubscriber();
            foreach (var channel in s_failoverEvents.Concat(s_abortEvents).Append(SwitchMaster))
            {
                await subscriber.SubscribeAsync(RedisChannel.Literal(channel), (_, message) => OnEvent(source, channel, message.ToString())).ConfigureAwait(false);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>True when a sentinel's answer to the connection handshake was an authentication error.</summary>
    private static bool RefusedAuthentication(RedisConnectionException ex) =>
        ex.FailureType == ConnectionFailureType.AuthenticationFailure
        || ex.ToString().Contains("NOAUTH", StringComparison.Ordinal)
        || ex.ToString().Contains("WRONGPASS", StringComparison.Ordinal);

    /// <summary>The master the first answering sentinel names, and its failover-timeout; null when none answers.</summary>
    private async Task<(EndPoint? Master, TimeSpan? FailoverTimeout)> AskMasterAsync(List<string>? failures)
    {
        (ConnectionMultiplexer Connection, string Node)[] connections;
        lock (_lock)
        {
            connections = [.. _connections];
        }

        foreach (var (connection, _) in connections)
        {
            var endPoint = connection.GetEndPoints()[0];
            try
            {
                var server = connection.GetServer(endPoint);
                var master = await server.SentinelGetMasterAddressByNameAsync(_serviceName).WaitAsync(_options.ConnectTimeout, _timeProvider).ConfigureAwait(false);
                if (master is null)
                {
                    failures?.Add($"{RedisConnectionFactory.Format(endPoint)} does not know '{_serviceName}'");
                    continue;
                }

                TimeSpan? failoverTimeout = null;
                var state = await server.SentinelMasterAsync(_serviceName).WaitAsync(_options.ConnectTimeout, _timeProvider).ConfigureAwait(false);
                var text = state.FirstOrDefault(p => p.Key == "failover-timeout").Value;
                if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) && ms > 0)
                {
                    failoverTimeout = TimeSpan.FromMilliseconds(ms);
                }

                return (master, failoverTimeout);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                failures?.Add($"{RedisConnectionFactory.Format(endPoint)}: {ex.Message}");
            }
        }

        return (null, null);
    }

    private void SetMaster(EndPoint master)
    {
        _factory.Retarget(master);
        _budget.MoveDefault(RedisConnectionFactory.Format(master));
        lock (_lock)
        {
            _master = master;
            _masterText = RedisConnectionFactory.Format(master);
        }
    }

    private void OnEvent(string sentinel, string channel, string message)
    {
        var parts = message.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (channel == SwitchMaster)
        {
            // "<name> <old-ip> <old-port> <new-ip> <new-port>"
            if (parts.Length >= 5 && parts[0] == _serviceName && ParseEndPoint(parts[3], parts[4]) is { } target)
            {
                _ = SwitchAsync(target, $"Sentinel {sentinel} switched the master of '{_serviceName}' to {RedisConnectionFactory.Format(target)}");
            }

            return;
        }

        // "master <name> <ip> <port>", or "<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>".
        // An event about a master the pool has already left (a late one from a slower sentinel) changes nothing.
        var at = Array.IndexOf(parts, "@");
        var first = at >= 0 ? at + 1 : parts is ["master", ..] ? 1 : -1;
        if (first < 0 || first + 2 >= parts.Length || parts[first] != _serviceName
            || ParseEndPoint(parts[first + 1], parts[first + 2]) is not { } about || RedisConnectionFactory.Format(about) != _masterText)
        {
            return;
        }

        if (channel.StartsWith('-'))
        {
            OnFailoverAborted(sentinel, channel);
        }
        else
        {
            OnFailoverProgress(sentinel, channel);
        }
    }

    /// <summary>An endpoint as Sentinel writes it in an event ("ip port"), formatted like the pool's own; null when malformed.</summary>
    private static EndPoint? ParseEndPoint(string host, string port)
    {
        if (!int.TryParse(port, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) || number is <= 0 or > 65535)
        {
            return null;
        }

        return IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, number) : new DnsEndPoint(host, number);
    }

    private void OnFailoverProgress(string sentinel, string stage)
    {
        string master;
        lock (_lock)
        {
            if (_disposing.IsCancellationRequested || _master is null || !_failingOver.Add(sentinel) || _failingOver.Count > 1)
            {
                return;
            }

            master = _masterText;
            if (_released.Task.IsCompleted)
            {
                _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _heldSince = _timeProvider.GetTimestamp();
            _admission.Hold($"Sentinel is failing '{_serviceName}' over away from {master} (seen {stage} from {sentinel})");
            _holdTimer?.Dispose();
            using (ExecutionContext.SuppressFlow())
            {
                _holdTimer = _timeProvider.CreateTimer(static state => ((SentinelFollower)state!).OnHoldTimeout(), this, _failoverTimeout + s_failoverTimeoutSlack, Timeout.InfiniteTimeSpan);
            }
        }

        var (idle, held) = _leases.RetireNode(master, $"Sentinel is failing '{_serviceName}' over away from {master}, the server this socket is connected to");
        Log.SentinelFailoverStarted(_logger, _poolName, _serviceName, master, stage, sentinel, idle, held);
    }

    private void OnFailoverAborted(string sentinel, string stage)
    {
        lock (_lock)
        {
            if (!_failingOver.Remove(sentinel) || _failingOver.Count > 0)
            {
                return;
            }
        }

        _ = ConfirmMasterAsync($"Sentinel {sentinel} aborted its failover ({stage})");
    }

    private void OnHoldTimeout()
    {
        lock (_lock)
        {
            _failingOver.Clear();
        }

        _ = ConfirmMasterAsync($"no switch within the failover-timeout ({RedisPoolOptionsValidator.Format(_failoverTimeout)}) and a second more");
    }

    /// <summary>Asks the sentinels for the master again: moves to it when it changed, else resumes on the current one.</summary>
    private async Task ConfirmMasterAsync(string reason)
    {
        try
        {
            var (master, _) = await AskMasterAsync(failures: null).ConfigureAwait(false);
            await SwitchAsync(master ?? _master!, reason).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.SentinelSwitchFailed(_logger, _poolName, _serviceName, ex);
            Release(reason);
        }
    }

    /// <summary>Moves every socket to <paramref name="target"/> (nothing when the pool is already there) and lets the held commands go.</summary>
    private async Task SwitchAsync(EndPoint target, string reason)
    {
        try
        {
            await _switching.WaitAsync(_disposing.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            string old;
            lock (_lock)
            {
                if (_master is null || _disposing.IsCancellationRequested)
                {
                    return;
                }

                _failingOver.Clear();
                old = _masterText;
            }

            var text = RedisConnectionFactory.Format(target);
            if (text == old)
            {
                Release(reason);
                return;
            }

            // A switch seen without its failover (a sentinel socket was down): hold now, and let what is in flight finish.
            lock (_lock)
            {
                if (_released.Task.IsCompleted)
                {
                    _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _heldSince = _timeProvider.GetTimestamp();
                }
            }

            _admission.Hold($"Sentinel switched the master of '{_serviceName}' from {old} to {text}; the pool is moving its sockets");
            var drainStarted = _timeProvider.GetTimestamp();
            while (_admission.InFlight > 0 && _timeProvider.GetElapsedTime(drainStarted) < s_drainBound)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), _timeProvider).ConfigureAwait(false);
            }

            var why = $"Sentinel moved the master of '{_serviceName}' from {old} to {text}";
            SetMaster(target);

            // The new master's first member joins before the old ones leave, so the drop-in multiplexer's subscriptions
            // move straight to it. Without room in the budget the old ones leave first and the new one connects after.
            if (_multiplexers.Count > 0)
            {
                try
                {
                    await _multiplexers.AddAsync(why, _multiplexers.Count + 1, _disposing.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RedisPoolException or RedisException or TimeoutException)
                {
                    // Connected below, after the old members are gone.
                }
            }

            var multiplexers = _multiplexers.RetireNode(old, why);
            MasterLeft?.Invoke(old);
            var (idle, held) = _leases.RetireNode(old, $"{old} is no longer the master of '{_serviceName}' ({text} is)");
            string role;
            try
            {
                role = await NewMasterRoleAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or RedisPoolException)
            {
                role = "unknown (" + ex.Message + ")";
            }

            var heldFor = _timeProvider.GetElapsedTime(_heldSince);
            Release(reason);
            Log.SentinelSwitched(_logger, _poolName, _serviceName, old, text, role, heldFor.TotalMilliseconds, multiplexers, idle, held, reason);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Never leave commands held: a failed move resumes, and the pool's usual failures say what is wrong.
            if (!_disposing.IsCancellationRequested)
            {
                Log.SentinelSwitchFailed(_logger, _poolName, _serviceName, ex);
            }

            Release(reason);
        }
        finally
        {
            _switching.Release();
        }
    }

    /// <summary>Connects the multiplexers to the new master and waits (bounded) until it says it is the master.</summary>
    private async Task<string> NewMasterRoleAsync()
    {
        await _multiplexers.EnsureMinimumAsync(_disposing.Token).ConfigureAwait(false);
        var started = _timeProvider.GetTimestamp();
        while (true)
        {
            var entry = await _multiplexers.PickAsync(_disposing.Token).ConfigureAwait(false);
            var reply = await entry.GetDatabase(-1).ExecuteAsync("ROLE").WaitAsync(_options.ConnectTimeout, _timeProvider).ConfigureAwait(false);
            var role = reply.Length > 0 ? reply[0].ToString() : reply.ToString();
            if (role == "master" || _timeProvider.GetElapsedTime(started) > s_roleCheckBound)
            {
                return role;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), _timeProvider).ConfigureAwait(false);
        }
    }

    private void Release(string reason)
    {
        TaskCompletionSource released;
        lock (_lock)
        {
            _failingOver.Clear();
            _holdTimer?.Dispose();
            _holdTimer = null;
            released = _released;
        }

        var wasHolding = _admission.HeldFor is not null;
        _admission.Resume();
        released.TrySetResult();
        if (wasHolding)
        {
            var heldMs = _timeProvider.GetElapsedTime(_heldSince).TotalMilliseconds;
            Log.SentinelResumed(_logger, _poolName, _serviceName, _masterText, heldMs, reason);
        }
    }

    private async Task CloseConnectionsAsync()
    {
        (ConnectionMultiplexer Connection, string Node)[] connections;
        lock (_lock)
        {
            connections = [.. _connections];
            _connections.Clear();
        }

        foreach (var (connection, node) in connections)
        {
            try
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                _budget.Release(node, SocketRole.Sentinel);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? started;
        lock (_lock)
        {
            if (_disposing.IsCancellationRequested)
            {
                return;
            }

            _disposing.Cancel();
            _holdTimer?.Dispose();
            started = _started;
            _released.TrySetResult();
        }

        if (started is not null)
        {
            await started.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await CloseConnectionsAsync().ConfigureAwait(false);
    }

    private static TaskCompletionSource CompletedSource()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }
}
