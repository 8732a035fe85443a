using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;

namespace RedisPoolKit.Testing;

/// <summary>
/// An isolated Redis server for tests: a real <c>redis-server</c> on a free 127.0.0.1 port with no
/// persistence, its own directory and log file, and an admin connection opened before anything else
/// so it keeps answering when the server is full. It can be killed, restarted on the same port and
/// stopped; it is never leaked (disposal, process exit, and the next run after a crash all stop it, by pid).
/// </summary>
/// <remarks>
/// Backend order: <see cref="RedisServerOptions.ServerPath"/>, the <c>REDIS_SERVER_PATH</c> environment
/// variable, <c>redis-server</c> on <c>PATH</c>, then a Testcontainers.Redis container when a Docker
/// engine answers. Otherwise <see cref="StartAsync"/> throws <see cref="RedisServerStartException"/>
/// with <see cref="RedisServerStartFailure.NotFound"/> naming the three ways to get one.
/// </remarks>
public sealed class RedisServer : IAsyncDisposable
{
    /// <summary>The environment variable naming an explicit <c>redis-server</c> binary.</summary>
    public const string ServerPathVariable = "REDIS_SERVER_PATH";

    /// <summary>The client name of <see cref="Admin"/>, as <c>CLIENT LIST</c> shows it.</summary>
    public const string AdminClientName = "harness-admin";

    private const int PortAttempts = 3;

    private readonly RedisServerOptions _options;
    private readonly Func<int, ServerBackend> _createBackend;
    private ServerBackend _backend;
    private ConnectionMultiplexer? _admin;
    private int _disposed;

    private RedisServer(RedisServerOptions options, int port, Func<int, ServerBackend> createBackend, ServerBackend backend)
    {
        _options = options;
        _createBackend = createBackend;
        _backend = backend;
        Port = port;
        EndPoint = new IPEndPoint(IPAddress.Loopback, port);
    }

    /// <summary>The server's loopback endpoint.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The server's port on 127.0.0.1; unchanged by <see cref="RestartAsync"/>.</summary>
    public int Port { get; }

    /// <summary>A StackExchange.Redis configuration string for this server: <c>127.0.0.1:port</c>, plus <c>password=...</c> when one is required.</summary>
    public string ConnectionString =>
        (_options.Password is null
            ? string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}")
            : string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port},password={_options.Password}"))
        + string.Concat(_options.RenamedCommands.Select(r => $",${r.Key}={r.Value}"));

    /// <summary>What runs this server.</summary>
    public RedisServerBackend Backend => _backend.Kind;

    /// <summary>The pid of the <c>redis-server</c> process; <see langword="null"/> for a container or while the server is killed or stopped.</summary>
    public int? ProcessId => _backend.ProcessId;

    /// <summary>
    /// An admin connection (<c>allowAdmin</c>, client name <see cref="AdminClientName"/>, one socket) opened
    /// right after the server first answered, so it still answers when the server is at <c>maxclients</c>.
    /// </summary>
    /// <remarks>Replaced by <see cref="RestartAsync"/>: read the property again rather than keeping the instance.</remarks>
    public ConnectionMultiplexer Admin => _admin ?? throw new InvalidOperationException(
        _options.OpenAdmin
            ? "The Redis server is not running: call RestartAsync() first."
            : "This server belongs to a cluster or Sentinel set, whose nodes have no Admin multiplexer: use the node's or sentinel's own ExecuteAsync, InfoAsync and ClientListAsync.");

    /// <summary>Starts an isolated server and waits until it answers <c>PING</c>.</summary>
    /// <exception cref="RedisServerStartException">No server could be found, its port was taken, it exited at start, or it never answered.</exception>
    public static async Task<RedisServer> StartAsync(RedisServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RedisServerOptions();
        if (options.StartTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.StartTimeout, "RedisServerOptions.StartTimeout must be positive.");
        }

        var binary = options.Backend == RedisServerBackend.Container ? null : FindBinary(options);
        if (binary is null && options.Backend == RedisServerBackend.Process)
        {
            throw NotFound(dockerFailure: null);
        }

        for (var attempt = 1; ; attempt++)
        {
            var port = options.Port ?? FreePort();
            Func<int, ServerBackend> create = binary is not null
                ? p => CreateProcessBackend(binary, p, options)
                : p => new ContainerServerBackend(options.ContainerImage, p, ServerArguments(options, p, directory: null));
            ServerBackend backend;
            try
            {
                backend = create(port);
            }
            catch (Exception ex) when (binary is null && ex is not OperationCanceledException)
            {
                throw NotFound(ex);
            }

            var server = new RedisServer(options, port, create, backend);
            try
            {
                await server.LaunchAsync(cancellationToken).ConfigureAwait(false);
                return server;
            }
            catch (RedisServerStartException ex) when (ex.Failure == RedisServerStartFailure.PortInUse && options.Port is null && attempt < PortAttempts)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                await server.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>Kills the server with SIGKILL, as a crash would: no shutdown, clients see their sockets die.</summary>
    /// <remarks>The container backend stops the container instead (Docker gives no SIGKILL through Testcontainers' API).</remarks>
    public async Task KillAsync()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _backend.KillAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the server gracefully (SIGTERM, then SIGKILL after 5 seconds).</summary>
    public async Task StopAsync()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _backend.StopAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Starts the server again on the same port with the same arguments (killing it first if it still
    /// runs), waits for <c>PING</c> and opens a new <see cref="Admin"/> connection. Data is not kept.
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await CloseAdminAsync().ConfigureAwait(false);
        if (_backend.Kind == RedisServerBackend.Process)
        {
            await _backend.DisposeAsync().ConfigureAwait(false);
            _backend = _createBackend(Port);
        }
        else
        {
            await _backend.KillAsync().ConfigureAwait(false);
        }

        await LaunchAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The last lines of the server's log (and anything it wrote to its console), for failure messages.</summary>
    public string LogTail(int lines = 40) => _backend.LogTail(lines);

    /// <summary>Runs <c>INFO section</c> on <see cref="Admin"/> and returns its <c>field:value</c> pairs.</summary>
    public async Task<IReadOnlyDictionary<string, string>> InfoAsync(string section = "default")
    {
        var text = (string?)await AdminServer().ExecuteAsync("INFO", section).ConfigureAwait(false) ?? string.Empty;
        return ParseInfo(text);
    }

    /// <summary>The <c>field:value</c> pairs of an <c>INFO</c> reply.</summary>
    internal static IReadOnlyDictionary<string, string> ParseInfo(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in StripVerbatimPrefix(text).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[0] != '#')
            {
                result[line[..colon]] = line[(colon + 1)..];
            }
        }

        return result;
    }

    /// <summary>Runs <c>CLIENT LIST</c> on <see cref="Admin"/>; the admin connection itself is included.</summary>
    public async Task<IReadOnlyList<RedisClientInfo>> ClientListAsync()
    {
        var text = (string?)await AdminServer().ExecuteAsync("CLIENT", "LIST").ConfigureAwait(false) ?? string.Empty;
        return RedisClientInfo.ParseList(text);
    }

    /// <summary>Runs <c>CONFIG SET name value</c> on <see cref="Admin"/>.</summary>
    public Task ConfigSetAsync(string name, string value) => AdminServer().ExecuteAsync("CONFIG", "SET", name, value);

    /// <summary>Opens a plain TCP connection to the server (no handshake sent). The caller disposes it.</summary>
    public async Task<TcpClient> ConnectRawAsync(CancellationToken cancellationToken = default)
    {
        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        try
        {
            await client.ConnectAsync(EndPoint, cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Closes <see cref="Admin"/>, kills the server and deletes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await CloseAdminAsync().ConfigureAwait(false);
        await _backend.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"redis-server 127.0.0.1:{Port} ({Backend}{(ProcessId is { } pid ? ", pid " + pid.ToString(CultureInfo.InvariantCulture) : string.Empty)})");

    /// <summary>Over RESP3, INFO and CLIENT LIST arrive as verbatim strings whose text starts with the format, <c>txt:</c>.</summary>
    internal static string StripVerbatimPrefix(string text) =>
        text.StartsWith("txt:", StringComparison.Ordinal) ? text[4..] : text;

    private static ProcessServerBackend CreateProcessBackend(string binary, int port, RedisServerOptions options)
    {
        var directory = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", string.Create(CultureInfo.InvariantCulture, $"redis-{port}-{Guid.NewGuid():N}"));
        Directory.CreateDirectory(directory);
        return new ProcessServerBackend(binary, ServerArguments(options, port, directory), directory, Path.Combine(directory, "redis.log"));
    }

    private static List<string> ServerArguments(RedisServerOptions options, int port, string? directory)
    {
        var arguments = options.ConfigFile is null ? [] : new List<string> { options.ConfigFile };
        arguments.AddRange(["--save", string.Empty, "--appendonly", "no"]);
        if (directory is not null)
        {
            arguments.AddRange(["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--daemonize", "no", "--dir", directory, "--logfile", Path.Combine(directory, "redis.log")]);
        }

        if (options.Password is not null)
        {
            arguments.AddRange(["--requirepass", options.Password]);
        }

        foreach (var renamed in options.RenamedCommands)
        {
            arguments.AddRange(["--rename-command", renamed.Key, renamed.Value]);
        }

        arguments.AddRange(options.Arguments);
        return arguments;
    }

    /// <summary>Null means: no binary, try a container.</summary>
    private static string? FindBinary(RedisServerOptions options)
    {
        var explicitPath = options.ServerPath ?? Environment.GetEnvironmentVariable(ServerPathVariable);
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            if (!File.Exists(explicitPath))
            {
                var source = options.ServerPath is not null ? "RedisServerOptions.ServerPath" : ServerPathVariable;
                throw new RedisServerStartException(
                    RedisServerStartFailure.NotFound,
                    $"{source} points at '{explicitPath}', which does not exist. Point it at a redis-server binary, or unset it to use redis-server from PATH.");
            }

            return explicitPath;
        }

        var name = OperatingSystem.IsWindows() ? "redis-server.exe" : "redis-server";
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static RedisServerStartException NotFound(Exception? dockerFailure) =>
        new(
            RedisServerStartFailure.NotFound,
            "No Redis server is available to the test harness: no redis-server binary was found (REDIS_SERVER_PATH is unset and redis-server is not on PATH)"
            + (dockerFailure is null ? " and RedisServerOptions.Backend is Process, so Docker was not tried. " : " and no Docker engine answered (" + dockerFailure.Message.Trim() + "). ")
            + "Get one in any of three ways: "
            + "(1) set REDIS_SERVER_PATH to a redis-server binary; "
            + "(2) install it: sudo apt-get install redis-server (Debian/Ubuntu; brew install redis on macOS); "
            + "(3) start a Docker engine (the harness then runs the redis:7.0 image through Testcontainers).",
            logTail: null,
            innerException: dockerFailure);

    internal static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    private IServer AdminServer() => Admin.GetServer(EndPoint);

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _backend.LaunchAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (_backend.Kind == RedisServerBackend.Container && ex is not OperationCanceledException)
        {
            throw NotFound(ex);
        }

        await WaitForPingAsync(cancellationToken).ConfigureAwait(false);
        if (_options.OpenAdmin)
        {
            _admin = await ConnectionMultiplexer.ConnectAsync(AdminConfiguration()).ConfigureAwait(false);
        }
    }

    private ConfigurationOptions AdminConfiguration()
    {
        var configuration = new ConfigurationOptions
        {
            AllowAdmin = true,
            ClientName = AdminClientName,
            Password = _options.Password,
            Protocol = RedisProtocol.Resp3,
            SharedSubscriptionConnection = true,
            AbortOnConnectFail = true,
            ConnectTimeout = (int)_options.StartTimeout.TotalMilliseconds,
            ConnectRetry = 3,
        };
        if (_options.RenamedCommands.Count > 0)
        {
            configuration.CommandMap = CommandMap.Create(new Dictionary<string, string?>(_options.RenamedCommands.Select(r => KeyValuePair.Create(r.Key, (string?)r.Value)), StringComparer.OrdinalIgnoreCase));
        }

        configuration.EndPoints.Add(EndPoint);
        return configuration;
    }

    private async Task WaitForPingAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        string? lastError = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_backend.ExitCode is { } exitCode)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
                var log = LogTail();
                if (log.Contains("Address already in use", StringComparison.OrdinalIgnoreCase))
                {
                    throw new RedisServerStartException(
                        RedisServerStartFailure.PortInUse,
                        string.Create(CultureInfo.InvariantCulture, $"Port {Port} on 127.0.0.1 is already in use: redis-server could not listen on it and exited (code {exitCode}). Leave RedisServerOptions.Port unset to get a free port."),
                        log);
                }

                throw new RedisServerStartException(
                    RedisServerStartFailure.ExitedAtStart,
                    string.Create(CultureInfo.InvariantCulture, $"The Redis server for port {Port} exited at start with code {exitCode} before answering PING. Check its arguments ({string.Join(' ', _options.Arguments)}) and its log below."),
                    log);
            }

            if (started.Elapsed > _options.StartTimeout)
            {
                throw new RedisServerStartException(
                    RedisServerStartFailure.NotAnswering,
                    string.Create(CultureInfo.InvariantCulture, $"The Redis server on 127.0.0.1:{Port} is running but did not answer PING within RedisServerOptions.StartTimeout ({_options.StartTimeout.TotalSeconds:0.###} s); last attempt: {lastError ?? "none"}. Raise StartTimeout if the machine is slow."),
                    LogTail());
            }

            lastError = await TryPingAsync(cancellationToken).ConfigureAwait(false);
            if (lastError is null)
            {
                return;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Null when the server answered; otherwise what went wrong.</summary>
    private async Task<string?> TryPingAsync(CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(TimeSpan.FromMilliseconds(500));
        try
        {
            using var client = await ConnectRawAsync(attempt.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), attempt.Token).ConfigureAwait(false);
            var buffer = new byte[256];
            var read = await stream.ReadAsync(buffer, attempt.Token).ConfigureAwait(false);
            var reply = Encoding.ASCII.GetString(buffer, 0, read);

            // A password-protected server answering NOAUTH is up.
            return reply.StartsWith("+PONG", StringComparison.Ordinal) || reply.StartsWith("-NOAUTH", StringComparison.Ordinal)
                ? null
                : "reply " + (read == 0 ? "(connection closed)" : reply.TrimEnd());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return "no reply within 500 ms";
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return ex.Message;
        }
    }

    private async Task CloseAdminAsync()
    {
        if (Interlocked.Exchange(ref _admin, null) is { } admin)
        {
            await admin.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            await admin.DisposeAsync().ConfigureAwait(false);
        }
    }
}
