using System.Globalization;
using System.Net;

namespace RedisPoolKit.Testing;

/// <summary>
/// A local Sentinel-managed Redis for tests: a master, <see cref="RedisSentinelSetOptions.Replicas"/> replicas and
/// <see cref="RedisSentinelSetOptions.Sentinels"/> sentinels, each a real process on a free 127.0.0.1 port, with a short
/// <c>down-after-milliseconds</c> and <c>failover-timeout</c> so a failover completes in seconds.
/// <see cref="StartAsync"/> returns once every sentinel sees the master, every replica and every other sentinel.
/// Disposal stops every process it started, by pid, and deletes its files; a crashed test run's processes are reaped
/// by the next run, as for <see cref="RedisServer"/>.
/// </summary>
public sealed class RedisSentinelSet : IAsyncDisposable
{
    private readonly RedisSentinelSetOptions _options;
    private readonly string _directory;
    private readonly List<RedisServer> _servers = [];
    private readonly List<RedisSentinel> _sentinels = [];
    private int _disposed;

    private RedisSentinelSet(RedisSentinelSetOptions options, string directory)
    {
        _options = options;
        _directory = directory;
    }

    /// <summary>The name the sentinels monitor the master under.</summary>
    public string ServiceName => _options.ServiceName;

    /// <summary>The master and the replicas, in start order: the first was started as the master.</summary>
    /// <remarks>A failover swaps roles; ask <see cref="GetMasterAsync"/> for the current master.</remarks>
    public IReadOnlyList<RedisServer> Servers => _servers;

    /// <summary>The sentinels.</summary>
    public IReadOnlyList<RedisSentinel> Sentinels => _sentinels;

    /// <summary>The sentinels' endpoints.</summary>
    public IReadOnlyList<IPEndPoint> SentinelEndPoints => [.. _sentinels.Select(s => s.EndPoint)];

    /// <summary>
    /// A StackExchange.Redis configuration string for the service: <c>127.0.0.1:s1,127.0.0.1:s2,...,serviceName=mymaster</c>,
    /// with <c>sentinelUser</c> and <c>sentinelPassword</c> when the sentinels require them.
    /// </summary>
    public string ConnectionString =>
        string.Join(',', _sentinels.Select(s => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{s.Port}"))) + ",serviceName=" + ServiceName
        + (_options.SentinelUser is { } user ? ",sentinelUser=" + user : string.Empty)
        + (_options.SentinelPassword is { } password ? ",sentinelPassword=" + password : string.Empty);

    /// <summary>Starts the set and waits until every sentinel sees the master as up, every replica linked, and every other sentinel.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No replica, no sentinel, a quorum outside 1..Sentinels, or a non-positive time.</exception>
    /// <exception cref="RedisServerStartException">No <c>redis-server</c> or <c>redis-sentinel</c> was found (<see cref="RedisServerStartFailure.NotFound"/>),
    /// a process did not start, or the set did not form within <see cref="RedisSentinelSetOptions.StartTimeout"/> (<see cref="RedisServerStartFailure.NotFormed"/>).</exception>
    public static async Task<RedisSentinelSet> StartAsync(RedisSentinelSetOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RedisSentinelSetOptions();
        Validate(options);
        var sentinelBinary = RedisTools.Find(options.SentinelPath ?? Environment.GetEnvironmentVariable(RedisSentinelSetOptions.SentinelPathVariable), options.SentinelPath is not null ? "RedisSentinelSetOptions.SentinelPath" : RedisSentinelSetOptions.SentinelPathVariable, "redis-sentinel")
            ?? throw new RedisServerStartException(
                RedisServerStartFailure.NotFound,
                "A Sentinel set needs redis-sentinel, and none was found (REDIS_SENTINEL_PATH is unset and redis-sentinel is not on PATH). "
                + "Get it in either of two ways: "
                + "(1) install it: sudo apt-get install redis-sentinel (Debian/Ubuntu; brew install redis on macOS includes it); "
                + "(2) set REDIS_SENTINEL_PATH to a redis-sentinel binary, or to redis-server: it is the same program, and the harness starts it with --sentinel.");

        var directory = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "sentinel-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var set = new RedisSentinelSet(options, directory);
        try
        {
            var master = await RedisServer.StartAsync(set.DataOptions(replicaOf: null), cancellationToken).ConfigureAwait(false);
            set._servers.Add(master);
            await RedisTools.StartAllAsync(Enumerable.Range(0, options.Replicas).Select(_ => RedisServer.StartAsync(set.DataOptions(master.Port), cancellationToken)), set._servers.Add).ConfigureAwait(false);
            await TopologyWait.UntilAsync(
                set.UnlinkedReplicaAsync,
                options.StartTimeout,
                TopologyWait.NotFormed("The replicas did not report master_link_status:up", "RedisSentinelSetOptions.StartTimeout", options.StartTimeout, () => set.LogTails()),
                cancellationToken).ConfigureAwait(false);

            await RedisTools.StartAllAsync(Enumerable.Range(0, options.Sentinels).Select(i => set.StartSentinelAsync(sentinelBinary, i, master.Port, cancellationToken)), set._sentinels.Add).ConfigureAwait(false);
            await TopologyWait.UntilAsync(
                () => set.SentinelNotReadyAsync(master.Port),
                options.StartTimeout,
                TopologyWait.NotFormed("The sentinels did not all see the master, its replicas and each other", "RedisSentinelSetOptions.StartTimeout", options.StartTimeout, () => set.LogTails()),
                cancellationToken).ConfigureAwait(false);
            return set;
        }
        catch
        {
            await set.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The server a running sentinel reports as the master now.</summary>
    public async Task<RedisServer> GetMasterAsync()
    {
        var sentinel = _sentinels.FirstOrDefault(s => s.IsRunning) ?? throw new InvalidOperationException("No sentinel of the set is running.");
        var port = await sentinel.GetMasterPortAsync(ServiceName).ConfigureAwait(false);
        return ServerByPort(port);
    }

    /// <summary>
    /// Forces a failover (<c>SENTINEL FAILOVER</c>) and waits until every running sentinel reports a new master, that
    /// server says it is the master, and the old master (when it runs) has been turned into its replica by Sentinel.
    /// </summary>
    /// <remarks>Sentinel turns the old master into a replica only after it has seen it report the old role for a while
    /// (about 10 seconds in Redis 7.0); until then the old master still accepts writes, which it loses when it becomes a replica.</remarks>
    /// <returns>The new master.</returns>
    /// <exception cref="TimeoutException">The failover did not complete within <see cref="RedisSentinelSetOptions.StartTimeout"/>.</exception>
    public async Task<RedisServer> FailoverAsync(CancellationToken cancellationToken = default)
    {
        var old = await GetMasterAsync().ConfigureAwait(false);
        var sentinel = _sentinels.First(s => s.IsRunning);
        await sentinel.ExecuteAsync("SENTINEL", "FAILOVER", ServiceName).ConfigureAwait(false);
        RedisServer? promoted = null;
        await TopologyWait.UntilAsync(
            async () =>
            {
                foreach (var running in _sentinels.Where(s => s.IsRunning))
                {
                    var port = await running.GetMasterPortAsync(ServiceName).ConfigureAwait(false);
                    if (port == old.Port)
                    {
                        return $"{running} still reports {old} as the master";
                    }

                    promoted = ServerByPort(port);
                }

                var promotedRole = await promoted!.InfoAsync("replication").ConfigureAwait(false);
                if (promotedRole.GetValueOrDefault("role") != "master")
                {
                    return $"{promoted} reports role:{promotedRole.GetValueOrDefault("role")}";
                }

                if (old.ProcessId is null)
                {
                    return null;
                }

                var oldRole = await old.InfoAsync("replication").ConfigureAwait(false);
                return oldRole.GetValueOrDefault("role") == "slave" && oldRole.GetValueOrDefault("master_port") == promoted.Port.ToString(CultureInfo.InvariantCulture)
                    ? null
                    : $"the old master {old} reports role:{oldRole.GetValueOrDefault("role")}, master_port:{oldRole.GetValueOrDefault("master_port")}";
            },
            _options.StartTimeout,
            last => new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"The failover away from {old} did not complete within RedisSentinelSetOptions.StartTimeout ({_options.StartTimeout.TotalSeconds:0.###} s); last check: {last}{Environment.NewLine}{LogTails()}")),
            cancellationToken).ConfigureAwait(false);
        return promoted!;
    }

    /// <summary>The last lines of every process's log, for failure messages.</summary>
    public string LogTails(int lines = 20) =>
        string.Join(
            Environment.NewLine,
            _servers.Select(s => $"--- {s} ---{Environment.NewLine}{s.LogTail(lines)}")
                .Concat(_sentinels.Select(s => $"--- {s} ---{Environment.NewLine}{s.LogTail(lines)}")));

    /// <summary>Stops every sentinel and server (by pid) and deletes the set's files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Sentinels first, so none reacts to the servers going away.
        foreach (var sentinel in _sentinels)
        {
            await sentinel.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var server in _servers)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }

        RedisTools.TryDeleteDirectory(_directory);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"Sentinel set '{ServiceName}': {_servers.Count} servers, {_sentinels.Count} sentinels ({ConnectionString})");

    private static void Validate(RedisSentinelSetOptions options)
    {
        if (options.Replicas < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Replicas, "RedisSentinelSetOptions.Replicas must be at least 1: a failover needs a replica to promote.");
        }

        if (options.Sentinels < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Sentinels, "RedisSentinelSetOptions.Sentinels must be at least 1.");
        }

        if (options.Quorum is { } quorum && (quorum < 1 || quorum > options.Sentinels))
        {
            throw new ArgumentOutOfRangeException(nameof(options), quorum, "RedisSentinelSetOptions.Quorum must be between 1 and Sentinels.");
        }

        if (options.DownAfter <= TimeSpan.Zero || options.FailoverTimeout <= TimeSpan.Zero || options.StartTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "RedisSentinelSetOptions.DownAfter, FailoverTimeout and StartTimeout must be positive.");
        }

        ArgumentException.ThrowIfNullOrWhiteSpace(options.ServiceName, "options.ServiceName");
        if (options.SentinelUser is not null && options.SentinelPassword is null)
        {
            throw new ArgumentException("RedisSentinelSetOptions.SentinelUser needs SentinelPassword: the user's password.", nameof(options));
        }
    }

    private RedisServerOptions DataOptions(int? replicaOf)
    {
        var options = new RedisServerOptions { Backend = RedisServerBackend.Process, ServerPath = _options.ServerPath, StartTimeout = _options.StartTimeout };
        if (replicaOf is { } port)
        {
            options.Arguments.Add("--replicaof");
            options.Arguments.Add("127.0.0.1");
            options.Arguments.Add(port.ToString(CultureInfo.InvariantCulture));
        }

        foreach (var argument in _options.Arguments)
        {
            options.Arguments.Add(argument);
        }

        return options;
    }

    private Task<RedisSentinel> StartSentinelAsync(string binary, int index, int masterPort, CancellationToken cancellationToken)
    {
        // Sentinel rewrites its configuration file (its id, the current master, known peers): it lives in the set's
        // directory, so a restarted sentinel keeps its view.
        var configFile = Path.Combine(_directory, string.Create(CultureInfo.InvariantCulture, $"sentinel-{index}.conf"));
        var name = ServiceName;
        var quorum = _options.Quorum ?? (_options.Sentinels / 2) + 1;
        File.WriteAllText(configFile, string.Create(CultureInfo.InvariantCulture, $"""
            sentinel monitor {name} 127.0.0.1 {masterPort} {quorum}
            sentinel down-after-milliseconds {name} {(long)_options.DownAfter.TotalMilliseconds}
            sentinel failover-timeout {name} {(long)_options.FailoverTimeout.TotalMilliseconds}
            sentinel parallel-syncs {name} 1
            {(_options.SentinelUser is { } user ? $"user {user} on >{_options.SentinelPassword} ~* &* +@all" : string.Empty)}

            """));
        var options = new RedisServerOptions { ServerPath = binary, ConfigFile = configFile, StartTimeout = _options.StartTimeout, Password = _options.SentinelPassword };
        options.Arguments.Add("--sentinel");
        return RedisSentinel.StartAsync(options, cancellationToken);
    }

    private async Task<string?> UnlinkedReplicaAsync()
    {
        foreach (var replica in _servers.Skip(1))
        {
            var replication = await replica.InfoAsync("replication").ConfigureAwait(false);
            if (replication.GetValueOrDefault("master_link_status") != "up")
            {
                return $"{replica}: master_link_status:{replication.GetValueOrDefault("master_link_status")}";
            }
        }

        return null;
    }

    private async Task<string?> SentinelNotReadyAsync(int masterPort)
    {
        foreach (var sentinel in _sentinels)
        {
            var master = await sentinel.MasterStateAsync(ServiceName).ConfigureAwait(false);
            var expected = string.Create(CultureInfo.InvariantCulture, $"port {masterPort}, flags master, {_options.Replicas} replicas, {_options.Sentinels - 1} other sentinels");
            var seen = $"port {master.GetValueOrDefault("port")}, flags {master.GetValueOrDefault("flags")}, {master.GetValueOrDefault("num-slaves")} replicas, {master.GetValueOrDefault("num-other-sentinels")} other sentinels";
            if (seen != expected)
            {
                return $"{sentinel} sees {seen}; waiting for {expected}";
            }

            foreach (var replica in await sentinel.ReplicasAsync(ServiceName).ConfigureAwait(false))
            {
                if (replica.GetValueOrDefault("flags") != "slave" || replica.GetValueOrDefault("master-link-status") != "ok")
                {
                    return $"{sentinel} sees replica port {replica.GetValueOrDefault("port")} with flags {replica.GetValueOrDefault("flags")}, master-link-status {replica.GetValueOrDefault("master-link-status")}";
                }
            }
        }

        return null;
    }

    private RedisServer ServerByPort(int port) =>
        _servers.FirstOrDefault(s => s.Port == port) ?? throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Sentinel reports port {port} as the master, which is none of this set's servers."));
}
