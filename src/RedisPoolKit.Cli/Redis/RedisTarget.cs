using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit.Cli.Redis;

/// <summary>
/// The tool's connection to the servers a configuration string names: one admin multiplexer, named
/// <see cref="ClientName"/> so its own sockets are recognisable (and never killed) in <c>CLIENT LIST</c>.
/// </summary>
internal sealed class RedisTarget : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _multiplexer;
    private readonly TimeProvider _time;

    private RedisTarget(ConnectionMultiplexer multiplexer, TimeProvider time)
    {
        _multiplexer = multiplexer;
        _time = time;
    }

    /// <summary>The <c>CLIENT SETNAME</c> of the tool's sockets.</summary>
    public static string ClientName { get; } = string.Create(CultureInfo.InvariantCulture, $"redispool-cli-{Environment.ProcessId}");

    /// <summary>Connects, or throws <see cref="TargetException"/> with a message an operator can act on.</summary>
    public static async Task<RedisTarget> ConnectAsync(string configuration, TimeProvider time)
    {
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(configuration);
        }
        catch (ArgumentException ex)
        {
            throw new TargetException($"The configuration string is not valid: {FirstLine(ex.Message)}", ex);
        }

        if (options.EndPoints.Count == 0)
        {
            throw new TargetException("The configuration string names no endpoint: pass host:port (for example 127.0.0.1:6379,password=...).");
        }

        // INFO, CLIENT LIST and CLIENT KILL are admin commands in StackExchange.Redis.
        options.AllowAdmin = true;
        options.ClientName = ClientName;
        options.AbortOnConnectFail = true;
        options.ConnectRetry = 1;
        // One socket per server, so the tool still gets in when a single slot is left: RESP3 with the subscription
        // connection shared (StackExchange.Redis otherwise opens a second, subscription socket), and no
        // configuration-channel subscription, which would be the only reason to open it.
        options.Protocol = RedisProtocol.Resp3;
        options.SharedSubscriptionConnection = true;
        options.ConfigurationChannel = string.Empty;
        try
        {
            var multiplexer = await ConnectionMultiplexer.ConnectAsync(options);
            return new RedisTarget(multiplexer, time);
        }
        catch (RedisConnectionException ex)
        {
            var endpoints = string.Join(", ", options.EndPoints.Select(Format));
            // StackExchange.Redis does not pass on what a full server writes before it closes the socket: ask the
            // servers with a plain socket, which a full server answers with the error unprompted and one with a free
            // slot answers with silence (then the handshake itself failed).
            var probed = !options.Ssl && ex.FailureType != ConnectionFailureType.AuthenticationFailure;
            var greeting = probed ? await GreetingAsync(options.EndPoints, time) : null;
            var message = greeting switch
            {
                { Line: { } line } => $"{greeting.Value.EndPoint} refused the connection: {line}. Every connection slot is taken; free some from a session that is already open (redis-cli CLIENT LIST / CLIENT KILL ID), or restart the biggest holder, then run redispool inspect.",
                { } silent => $"Could not connect to {endpoints} ({ex.FailureType}): {silent.EndPoint} accepted the connection, so the handshake failed. The user must be allowed HELLO, AUTH and ECHO (ACL category @connection); check the user, password and ssl settings.",
                null when probed => $"Could not connect to {endpoints} ({ex.FailureType}): nothing accepted a TCP connection there (the server is not running, the host or port is wrong, or a firewall drops it).",
                null => $"Could not connect to {endpoints} ({ex.FailureType}): {FirstSentence(ex.InnerException?.Message ?? ex.Message)}",
            };
            throw new TargetException(message, ex);
        }
    }

    /// <summary>
    /// The first endpoint that greets a bare TCP connection with <c>-ERR max number of clients reached</c> (with that line),
    /// else the first that accepts one and waits for a command (line null), else null (nothing accepts).
    /// </summary>
    private static async Task<(string EndPoint, string? Line)?> GreetingAsync(EndPointCollection endPoints, TimeProvider time)
    {
        (string EndPoint, string? Line)? silent = null;
        foreach (var endPoint in endPoints)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1), time);
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(endPoint, timeout.Token);
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or OperationCanceledException)
            {
                continue;
            }

            try
            {
                var buffer = new byte[256];
                var read = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, timeout.Token);
                var line = FirstLine(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
                if (line.StartsWith("-ERR max number of clients", StringComparison.Ordinal))
                {
                    return (Format(endPoint), line[1..]);
                }
            }
            catch (OperationCanceledException)
            {
                silent ??= (Format(endPoint), null);
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Accepted and reset: neither full (it would have written the error) nor listening for commands.
            }
        }

        return silent;
    }

    /// <summary>The masters (one per shard in a cluster; the one server of a standalone deployment), by endpoint.</summary>
    /// <remarks>
    /// A configuration string that names only replicas (a read endpoint) has no master to read: the replicas are
    /// read instead, since they count clients against their own <c>maxclients</c>.
    /// </remarks>
    public IReadOnlyList<IServer> Masters()
    {
        var connected = _multiplexer.GetServers();
        var masters = connected.Where(s => !s.IsReplica).ToList();
        return [.. (masters.Count > 0 ? masters : [.. connected]).OrderBy(s => Format(s.EndPoint), StringComparer.Ordinal)];
    }

    /// <summary>Reads one master: INFO, the CONFIG values the checks need and CLIENT LIST; what is refused ends up in <see cref="ServerSnapshot.Unseen"/>.</summary>
    public async Task<ServerSnapshot> ReadAsync(IServer server, bool clients = true, bool config = true)
    {
        var unseen = new List<Unseen>();
        var endpoint = Format(server.EndPoint);
        if (!server.IsConnected)
        {
            unseen.Add(new Unseen("connection", "not connected", "everything about this server"));
            return new ServerSnapshot { Endpoint = endpoint, At = _time.GetUtcNow(), Unseen = unseen };
        }

        var info = new Dictionary<string, string>(StringComparer.Ordinal);
        (string Section, string Missing)[] sections =
        [
            ("server", "the server's version and process id (the OS file-limit check)"),
            ("clients", "connected_clients, maxclients and blocked_clients (counted from CLIENT LIST instead when it is allowed)"),
            ("stats", "rejected_connections"),
        ];
        foreach (var (section, missing) in sections)
        {
            var text = await TryAsync(server, unseen, $"INFO {section}", missing, "INFO", section);
            if (text is not null)
            {
                foreach (var (key, value) in InfoText.Parse(text))
                {
                    info[key] = value;
                }
            }
        }

        var maxClients = InfoText.Number(info, "maxclients");
        long? timeout = null, keepalive = null;
        if (config)
        {
            maxClients ??= await ConfigNumberAsync(server, unseen, "maxclients", "maxclients and the utilization");
            timeout = await ConfigNumberAsync(server, unseen, "timeout", "whether the server closes idle clients");
            keepalive = await ConfigNumberAsync(server, unseen, "tcp-keepalive", "whether the server detects dead peers");
        }

        IReadOnlyList<ClientEntry>? list = null;
        var own = new HashSet<long>();
        if (clients)
        {
            var text = await TryAsync(server, unseen, "CLIENT LIST", "the clients grouped by service, idle and blocked clients", "CLIENT", "LIST");
            list = text is null ? null : ClientEntry.ParseList(text);
            var id = await TryAsync(server, unseen, "CLIENT ID", "which client is this tool (it is then never killed)", "CLIENT", "ID");
            if (long.TryParse(id, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ownId))
            {
                own.Add(ownId);
            }

            foreach (var client in list ?? [])
            {
                if (client.Name == ClientName)
                {
                    own.Add(client.Id);
                }
            }
        }

        return new ServerSnapshot
        {
            Endpoint = endpoint,
            At = _time.GetUtcNow(),
            Info = info,
            ConnectedClients = InfoText.Number(info, "connected_clients") ?? list?.Count,
            MaxClients = maxClients,
            BlockedClients = InfoText.Number(info, "blocked_clients") ?? list?.Count(c => c.IsBlocked),
            RejectedConnections = InfoText.Number(info, "rejected_connections"),
            ProcessId = InfoText.Number(info, "process_id"),
            TimeoutSeconds = timeout,
            TcpKeepaliveSeconds = keepalive,
            Clients = list,
            OwnClientIds = own,
            Unseen = unseen,
        };
    }

    /// <summary>Reads every master; one snapshot each.</summary>
    public async Task<IReadOnlyList<ServerSnapshot>> ReadAllAsync(bool clients = true, bool config = true)
    {
        var result = new List<ServerSnapshot>();
        foreach (var server in Masters())
        {
            result.Add(await ReadAsync(server, clients, config));
        }

        return result;
    }

    /// <summary><c>CLIENT KILL ID id</c> on <paramref name="endpoint"/>; true when the server closed it.</summary>
    public async Task<(bool Killed, string? Error)> KillAsync(string endpoint, long id)
    {
        var server = Masters().FirstOrDefault(s => Format(s.EndPoint) == endpoint);
        if (server is null)
        {
            return (false, "the server is no longer a connected master");
        }

        try
        {
            var result = await server.ExecuteAsync("CLIENT", "KILL", "ID", id.ToString(CultureInfo.InvariantCulture));
            return ((long)result > 0, (long)result > 0 ? null : "no such client (it was gone already)");
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return (false, FirstLine(ex.Message));
        }
    }

    /// <summary>
    /// The fleet budget's registrations on every master (read-only: SCAN, ZRANGE, TIME), and the keys of the
    /// <paramref name="known"/> service/pool pairs; what is refused goes to <paramref name="unseen"/>.
    /// </summary>
    public Task<IReadOnlyList<FleetKeySnapshot>> ReadFleetsAsync(IEnumerable<(string Service, string Pool)> known, List<(string Endpoint, Unseen Unseen)> unseen) =>
        FleetReader.ReadAsync(_multiplexer, Masters(), known, unseen);

    public async ValueTask DisposeAsync() => await _multiplexer.DisposeAsync();

    public static string Format(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => ip.ToString(),
        DnsEndPoint dns => string.Create(CultureInfo.InvariantCulture, $"{dns.Host}:{dns.Port}"),
        _ => endPoint.ToString() ?? "unknown",
    };

    /// <summary>StackExchange.Redis's connect failures go on to advise abortConnect=false, which is no advice for this tool.</summary>
    private static string FirstSentence(string text)
    {
        var line = FirstLine(text);
        var end = line.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? line : line[..(end + 1)];
    }

    public static string FirstLine(string text)
    {
        var newline = text.IndexOfAny(['\r', '\n']);
        return (newline < 0 ? text : text[..newline]).Trim();
    }

    private static async Task<long?> ConfigNumberAsync(IServer server, List<Unseen> unseen, string name, string missing)
    {
        try
        {
            var reply = await server.ExecuteAsync("CONFIG", "GET", name);
            // CONFIG GET answers a flat array (RESP2) or a map (RESP3): name, value.
            var values = reply.Resp3Type == ResultType.Map || reply.Resp2Type == ResultType.Array ? (RedisResult[]?)reply : null;
            if (values is { Length: >= 2 } && long.TryParse((string?)values[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }

            unseen.Add(new Unseen($"CONFIG GET {name}", "the server returned no value", missing));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            unseen.Add(new Unseen($"CONFIG GET {name}", FirstLine(ex.Message), missing));
        }

        return null;
    }

    private static async Task<string?> TryAsync(IServer server, List<Unseen> unseen, string what, string missing, string command, params object[] arguments)
    {
        try
        {
            var reply = await server.ExecuteAsync(command, arguments);
            return reply.IsNull ? null : (string?)reply;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            unseen.Add(new Unseen(what, FirstLine(ex.Message), missing));
            return null;
        }
    }
}

/// <summary>The tool cannot reach or address the target at all; the message is written as is, without a stack trace.</summary>
internal sealed class TargetException(string message, Exception? inner = null) : Exception(message, inner);
