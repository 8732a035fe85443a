using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit.Testing;

/// <summary>
/// A Redis process the harness started as part of a topology: a <see cref="RedisClusterNode"/> or a
/// <see cref="RedisSentinel"/>. It has one admin socket of its own (client name <see cref="RedisServer.AdminClientName"/>),
/// opened right after the process first answered, so it keeps answering when the process is at <c>maxclients</c>;
/// unlike a multiplexer, that socket never discovers or connects to the rest of the topology.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "The cluster or Sentinel set that started the node disposes it; a node disposed on its own would leave a hole in a running topology.")]
public abstract class RedisNode
{
    private readonly string? _password;
    private RespAdminConnection _admin;

    private protected RedisNode(RedisServer server, RespAdminConnection admin, string? password = null)
    {
        Server = server;
        _admin = admin;
        _password = password;
    }

    /// <summary>The node's loopback endpoint.</summary>
    public IPEndPoint EndPoint => Server.EndPoint;

    /// <summary>The node's port on 127.0.0.1; unchanged by <see cref="RestartAsync"/>.</summary>
    public int Port => Server.Port;

    /// <summary>The pid of the process; <see langword="null"/> while it is killed.</summary>
    public int? ProcessId => Server.ProcessId;

    /// <summary>Whether the process runs (it has not been killed, or it has been restarted since).</summary>
    public bool IsRunning => Server.ProcessId is not null;

    private protected RedisServer Server { get; }

    /// <summary>Starts a node's process, opens its admin socket and checks it answers.</summary>
    private protected static async Task<(RedisServer Server, RespAdminConnection Admin)> LaunchAsync(RedisServerOptions options, CancellationToken cancellationToken)
    {
        options.Backend = RedisServerBackend.Process;
        options.OpenAdmin = false;
        var server = await RedisServer.StartAsync(options, cancellationToken).ConfigureAwait(false);
        var admin = new RespAdminConnection(server.EndPoint, options.Password);
        try
        {
            await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
            return (server, admin);
        }
        catch
        {
            await admin.DisposeAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs one command on this node over its admin socket; an error reply throws <see cref="RedisServerException"/>.</summary>
    public Task<RedisResult> ExecuteAsync(string command, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(arguments);
        return _admin.ExecuteAsync(command, arguments);
    }

    /// <summary>Runs <c>INFO section</c> on this node and returns its <c>field:value</c> pairs.</summary>
    public async Task<IReadOnlyDictionary<string, string>> InfoAsync(string section = "default") =>
        RedisServer.ParseInfo((string?)await ExecuteAsync("INFO", section).ConfigureAwait(false) ?? string.Empty);

    /// <summary>Runs <c>CLIENT LIST</c> on this node; the admin socket itself is included, named <see cref="RedisServer.AdminClientName"/>.</summary>
    public async Task<IReadOnlyList<RedisClientInfo>> ClientListAsync() =>
        RedisClientInfo.ParseList((string?)await ExecuteAsync("CLIENT", "LIST").ConfigureAwait(false) ?? string.Empty);

    /// <summary>Kills the process with SIGKILL, as a crash would.</summary>
    public Task KillAsync() => Server.KillAsync();

    /// <summary>
    /// Starts the process again on the same port with the same arguments and configuration file (killing it first if
    /// it still runs), waits until it answers and opens a new admin socket. Data is not kept; the topology's own state
    /// (cluster node id and slot map, a sentinel's view) is, because it lives in the configuration file.
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await _admin.DisposeAsync().ConfigureAwait(false);
        await Server.RestartAsync(cancellationToken).ConfigureAwait(false);
        _admin = new RespAdminConnection(Server.EndPoint, _password);
        await _admin.OpenAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The last lines of the process's log, for failure messages.</summary>
    public string LogTail(int lines = 40) => Server.LogTail(lines);

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Kind} 127.0.0.1:{Port}{(ProcessId is { } pid ? ", pid " + pid.ToString(CultureInfo.InvariantCulture) : " (not running)")}");

    /// <summary>What this node is, for <see cref="ToString"/>.</summary>
    private protected abstract string Kind { get; }

    internal async ValueTask DisposeAsync()
    {
        await _admin.DisposeAsync().ConfigureAwait(false);
        await Server.DisposeAsync().ConfigureAwait(false);
    }
}
