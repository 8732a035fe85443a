using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace RedisPoolKit.Testing;

/// <summary>
/// A local Redis Cluster for tests: <see cref="RedisClusterOptions.Masters"/> masters (and their replicas), each a real
/// <c>redis-server --cluster-enabled yes</c> on free 127.0.0.1 ports, joined by <c>redis-cli --cluster create</c>.
/// <see cref="StartAsync"/> returns once every node reports <c>cluster_state:ok</c> with all 16384 slots covered.
/// Disposal stops every process it started, by pid, and deletes the nodes' files; a crashed test run's nodes are
/// reaped by the next run, as for <see cref="RedisServer"/>.
/// </summary>
/// <remarks>Cluster nodes always run as local processes: the nodes announce their own loopback ports, which a
/// container's port mapping would hide. Data does not persist: a restarted node keeps its id and slots, not its keys.</remarks>
public sealed class RedisCluster : IAsyncDisposable
{
    /// <summary>The number of hash slots a cluster divides its keys into.</summary>
    public const int SlotCount = 16384;

    private const int PortAttempts = 3;

    private readonly RedisClusterOptions _options;
    private readonly string _directory;
    private readonly List<RedisClusterNode> _nodes = [];
    private int _disposed;

    private RedisCluster(RedisClusterOptions options, string directory)
    {
        _options = options;
        _directory = directory;
    }

    /// <summary>Every node, in start order: the first <see cref="RedisClusterOptions.Masters"/> were created as masters, the rest as their replicas.</summary>
    /// <remarks>Roles can change (a failover, a restart); ask <see cref="GetMastersAsync"/> for the current masters.</remarks>
    public IReadOnlyList<RedisClusterNode> Nodes => _nodes;

    /// <summary>Every node's endpoint, in <see cref="Nodes"/> order.</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => [.. _nodes.Select(n => n.EndPoint)];

    /// <summary>A StackExchange.Redis configuration string naming every node: <c>127.0.0.1:p1,127.0.0.1:p2,...</c>.</summary>
    public string ConnectionString => string.Join(',', _nodes.Select(n => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{n.Port}")));

    /// <summary>Starts the cluster and waits until every node reports <c>cluster_state:ok</c> with every slot covered.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than 3 masters, negative replicas, or a non-positive timeout.</exception>
    /// <exception cref="RedisServerStartException">No <c>redis-server</c> or <c>redis-cli</c> was found (<see cref="RedisServerStartFailure.NotFound"/>),
    /// a node did not start, or the cluster did not form within <see cref="RedisClusterOptions.StartTimeout"/> (<see cref="RedisServerStartFailure.NotFormed"/>).</exception>
    public static async Task<RedisCluster> StartAsync(RedisClusterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RedisClusterOptions();
        Validate(options);
        var cli = RedisTools.Find(options.CliPath ?? Environment.GetEnvironmentVariable(RedisClusterOptions.CliPathVariable), options.CliPath is not null ? "RedisClusterOptions.CliPath" : RedisClusterOptions.CliPathVariable, "redis-cli")
            ?? throw new RedisServerStartException(
                RedisServerStartFailure.NotFound,
                "A Redis Cluster needs redis-cli to create it, and none was found (REDIS_CLI_PATH is unset and redis-cli is not on PATH). "
                + "Install it: sudo apt-get install redis-tools (Debian/Ubuntu; brew install redis on macOS), or set REDIS_CLI_PATH to a redis-cli binary.");

        var directory = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "cluster-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var cluster = new RedisCluster(options, directory);
        try
        {
            var total = options.Masters * (1 + options.ReplicasPerMaster);
            await RedisTools.StartAllAsync(Enumerable.Range(0, total).Select(i => cluster.StartNodeAsync(i, cancellationToken)), cluster._nodes.Add).ConfigureAwait(false);
            await cluster.CreateAsync(cli, cancellationToken).ConfigureAwait(false);
            await cluster.WaitUntilHealthyAsync(cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Waits until every running node reports <c>cluster_state:ok</c>, knows every node, sees all 16384 slots
    /// served, and every running replica's link to its master is up; for example after a node was restarted.
    /// </summary>
    /// <exception cref="RedisServerStartException">Not reached within <see cref="RedisClusterOptions.StartTimeout"/> (<see cref="RedisServerStartFailure.NotFormed"/>).</exception>
    public Task WaitUntilHealthyAsync(CancellationToken cancellationToken = default) =>
        TopologyWait.UntilAsync(
            UnhealthyAsync,
            _options.StartTimeout,
            TopologyWait.NotFormed("The cluster did not report cluster_state:ok with all 16384 slots on every node", "RedisClusterOptions.StartTimeout", _options.StartTimeout, () => LogTails()),
            cancellationToken);

    /// <summary>The hash slot of <paramref name="key"/>, as the cluster computes it (<c>CLUSTER KEYSLOT</c>, hash tags included).</summary>
    public async Task<int> GetSlotAsync(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return (int)await AnyRunningNode().ExecuteAsync("CLUSTER", "KEYSLOT", key).ConfigureAwait(false);
    }

    /// <summary>The master that serves <paramref name="slot"/> now, according to a running master.</summary>
    public async Task<RedisClusterNode> GetSlotOwnerAsync(int slot)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, SlotCount);
        var view = await ViewAsync().ConfigureAwait(false);
        var owner = view.FirstOrDefault(e => e.IsMaster && e.Owns(slot))
            ?? throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"No master serves slot {slot}."));
        return NodeById(owner.Id);
    }

    /// <summary>The master that serves <paramref name="key"/> now: the owner of its <see cref="GetSlotAsync">slot</see>.</summary>
    public async Task<RedisClusterNode> GetKeyOwnerAsync(string key) => await GetSlotOwnerAsync(await GetSlotAsync(key).ConfigureAwait(false)).ConfigureAwait(false);

    /// <summary>The nodes that are masters now, according to a running master (failed masters excluded).</summary>
    public async Task<IReadOnlyList<RedisClusterNode>> GetMastersAsync()
    {
        var view = await ViewAsync().ConfigureAwait(false);
        return [.. view.Where(e => e.IsMaster && !e.IsFailed).Select(e => NodeById(e.Id)).OrderBy(n => _nodes.IndexOf(n))];
    }

    /// <summary>
    /// Starts moving <paramref name="slot"/> to <paramref name="target"/>: the target is set <c>IMPORTING</c> and the current
    /// owner <c>MIGRATING</c>, so the owner answers <c>-ASK</c> for keys of the slot it no longer holds. No key moves yet;
    /// <see cref="RedisSlotMigration.CompleteAsync"/> moves them and hands the slot over.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="target"/> is not a master of this cluster, or already owns the slot.</exception>
    public async Task<RedisSlotMigration> BeginSlotMigrationAsync(int slot, RedisClusterNode target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!_nodes.Contains(target))
        {
            throw new ArgumentException($"{target} is not a node of this cluster.", nameof(target));
        }

        var source = await GetSlotOwnerAsync(slot).ConfigureAwait(false);
        if (source == target)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{target} already serves slot {slot}."), nameof(target));
        }

        if (!await target.IsMasterAsync().ConfigureAwait(false))
        {
            throw new ArgumentException($"{target} is a replica: only a master can serve a slot.", nameof(target));
        }

        var number = slot.ToString(CultureInfo.InvariantCulture);
        await target.ExecuteAsync("CLUSTER", "SETSLOT", number, "IMPORTING", source.NodeId).ConfigureAwait(false);
        await source.ExecuteAsync("CLUSTER", "SETSLOT", number, "MIGRATING", target.NodeId).ConfigureAwait(false);
        return new RedisSlotMigration(this, slot, source, target);
    }

    /// <summary>Moves <paramref name="slot"/> and its keys to <paramref name="target"/> and waits until every running node agrees (the whole of <see cref="BeginSlotMigrationAsync"/> then <see cref="RedisSlotMigration.CompleteAsync"/>).</summary>
    public async Task MigrateSlotAsync(int slot, RedisClusterNode target, CancellationToken cancellationToken = default)
    {
        var migration = await BeginSlotMigrationAsync(slot, target).ConfigureAwait(false);
        await migration.CompleteAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The last lines of every node's log, for failure messages.</summary>
    public string LogTails(int lines = 20) =>
        string.Join(Environment.NewLine, _nodes.Select(n => $"--- {n} ---{Environment.NewLine}{n.LogTail(lines)}"));

    /// <summary>Stops every node (by pid) and deletes the cluster's files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var node in _nodes)
        {
            await node.DisposeAsync().ConfigureAwait(false);
        }

        RedisTools.TryDeleteDirectory(_directory);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"Redis Cluster of {_options.Masters} masters x {1 + _options.ReplicasPerMaster} nodes ({ConnectionString})");

    internal async Task<IReadOnlyList<ClusterNodeEntry>> ViewAsync()
    {
        Exception? last = null;
        foreach (var node in _nodes.Where(n => n.IsRunning))
        {
            try
            {
                var view = await node.ClusterNodesAsync().ConfigureAwait(false);
                if (view.FirstOrDefault(e => e.Flags.Contains("myself")) is { IsMaster: true })
                {
                    return view;
                }
            }
            catch (Exception ex) when (ex is IOException or TimeoutException or System.Net.Sockets.SocketException or StackExchange.Redis.RedisServerException)
            {
                last = ex;
            }
        }

        throw new InvalidOperationException("No running master of the cluster answered CLUSTER NODES.", last);
    }

    internal RedisClusterNode NodeById(string id) =>
        _nodes.FirstOrDefault(n => n.NodeId == id) ?? throw new InvalidOperationException($"Node {id} is not one this cluster started.");

    private static void Validate(RedisClusterOptions options)
    {
        if (options.Masters < 3)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Masters, "RedisClusterOptions.Masters must be at least 3: redis-cli --cluster create refuses fewer.");
        }

        if (options.ReplicasPerMaster < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ReplicasPerMaster, "RedisClusterOptions.ReplicasPerMaster must not be negative.");
        }

        if (options.StartTimeout <= TimeSpan.Zero || options.NodeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "RedisClusterOptions.StartTimeout and NodeTimeout must be positive.");
        }
    }

    private RedisClusterNode AnyRunningNode() =>
        _nodes.FirstOrDefault(n => n.IsRunning) ?? throw new InvalidOperationException("No node of the cluster is running.");

    private async Task<RedisClusterNode> StartNodeAsync(int index, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            // The bus port is chosen too: the default, port + 10000, can fall outside the port range or be taken.
            var options = new RedisServerOptions
            {
                Port = RedisServer.FreePort(),
                ServerPath = _options.ServerPath,
                StartTimeout = _options.StartTimeout,
            };
            var configFile = Path.Combine(_directory, string.Create(CultureInfo.InvariantCulture, $"nodes-{index}.conf"));
            foreach (var argument in (string[])[
                "--cluster-enabled", "yes",
                "--cluster-config-file", configFile,
                "--cluster-port", RedisServer.FreePort().ToString(CultureInfo.InvariantCulture),
                "--cluster-node-timeout", ((long)_options.NodeTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
                .. _options.Arguments])
            {
                options.Arguments.Add(argument);
            }

            try
            {
                return await RedisClusterNode.StartAsync(options, cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerStartException ex) when (attempt < PortAttempts && (ex.Failure == RedisServerStartFailure.PortInUse || ex.LogTail.Contains("in use", StringComparison.OrdinalIgnoreCase)))
            {
                File.Delete(configFile);
            }
        }
    }

    private async Task CreateAsync(string cli, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(cli)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add("--cluster");
        start.ArgumentList.Add("create");
        foreach (var node in _nodes)
        {
            start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{node.Port}"));
        }

        start.ArgumentList.Add("--cluster-replicas");
        start.ArgumentList.Add(_options.ReplicasPerMaster.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add("--cluster-yes");

        using var process = new Process { StartInfo = start };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.StartTimeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new RedisServerStartException(
                RedisServerStartFailure.NotFormed,
                string.Create(CultureInfo.InvariantCulture, $"redis-cli --cluster create did not finish within RedisClusterOptions.StartTimeout ({_options.StartTimeout.TotalSeconds:0.###} s). Raise StartTimeout if the machine is slow."),
                Text(output) + Environment.NewLine + LogTails());
        }

        if (process.ExitCode != 0)
        {
            throw new RedisServerStartException(
                RedisServerStartFailure.NotFormed,
                string.Create(CultureInfo.InvariantCulture, $"redis-cli --cluster create exited with code {process.ExitCode}; its output and the nodes' logs follow."),
                Text(output) + Environment.NewLine + LogTails());
        }

        static void Append(StringBuilder output, string? line)
        {
            if (line is not null)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        }

        static string Text(StringBuilder output)
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    /// <summary>Null when healthy; otherwise the first node that is not, and why.</summary>
    private async Task<string?> UnhealthyAsync()
    {
        foreach (var node in _nodes.Where(n => n.IsRunning))
        {
            var info = RedisServer.ParseInfo((string?)await node.ExecuteAsync("CLUSTER", "INFO").ConfigureAwait(false) ?? string.Empty);
            if (info.GetValueOrDefault("cluster_state") != "ok"
                || info.GetValueOrDefault("cluster_slots_ok") != SlotCount.ToString(CultureInfo.InvariantCulture)
                || info.GetValueOrDefault("cluster_known_nodes") != _nodes.Count.ToString(CultureInfo.InvariantCulture))
            {
                return string.Create(CultureInfo.InvariantCulture, $"{node}: cluster_state:{info.GetValueOrDefault("cluster_state")}, cluster_slots_ok:{info.GetValueOrDefault("cluster_slots_ok")}, cluster_known_nodes:{info.GetValueOrDefault("cluster_known_nodes")} of {_nodes.Count}");
            }

            var replication = await node.InfoAsync("replication").ConfigureAwait(false);
            if (replication.GetValueOrDefault("role") == "slave" && replication.GetValueOrDefault("master_link_status") != "up")
            {
                return $"{node}: replica with master_link_status:{replication.GetValueOrDefault("master_link_status")}";
            }
        }

        return null;
    }
}
