using System.Globalization;
using System.Text.Json;
using RedisPoolKit.Cli.Inspect;
using RedisPoolKit.Cli.Output;
using RedisPoolKit.Cli.Redis;
using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary>One thing the doctor found, and what to do about it.</summary>
/// <param name="Severity"><c>critical</c>, <c>warning</c> or <c>info</c>.</param>
/// <param name="Code">A stable identifier for scripts (<c>utilization</c>, <c>timeout_zero</c>...).</param>
/// <param name="Endpoint">The master it concerns.</param>
/// <param name="Summary">What was found, with the numbers.</param>
/// <param name="Fix">What to do about it.</param>
internal sealed record Finding(string Severity, string Code, string Endpoint, string Summary, string Fix);

/// <summary><c>redispool doctor --json</c>.</summary>
internal sealed record DoctorReport(int ExitCode, string Status, double SampleSeconds, IReadOnlyList<Finding> Findings, IReadOnlyList<UnseenReport> Unseen);

/// <summary>Thresholds of the doctor's checks.</summary>
/// <param name="LongIdle">A client idle this long counts as long-idle.</param>
internal sealed record DoctorThresholds(TimeSpan LongIdle)
{
    /// <summary>Long-idle clients worth a finding when the server never closes them: at least this many...</summary>
    public int LongIdleMinimum { get; init; } = 10;

    /// <summary>...and at least this share of the listed clients.</summary>
    public double LongIdleShare { get; init; } = 0.25;

    public int UnnamedMinimum { get; init; } = 10;

    public double UnnamedShare { get; init; } = 0.5;

    public double OneHolderShare { get; init; } = 0.5;

    public double BlockedShareOfMaxClients { get; init; } = 0.10;
}

/// <summary><c>redispool doctor</c>: findings with fixes; exit code 0 (healthy), 1 (warnings) or 2 (critical, or the server could not be reached).</summary>
internal static class DoctorCommand
{
    public const string Critical = "critical";
    public const string Warning = "warning";
    public const string Info = "info";

    public static async Task<int> RunAsync(CommandContext context, string configuration, TimeSpan sample, DoctorThresholds thresholds, bool json, CancellationToken cancellationToken)
    {
        List<Finding> findings = [];
        List<UnseenReport> unseen = [];
        try
        {
            await using var target = await RedisTarget.ConnectAsync(configuration, context.Time);
            var first = await target.ReadAllAsync(clients: true, config: true);
            IReadOnlyList<ServerSnapshot>? second = null;
            if (sample > TimeSpan.Zero)
            {
                await Task.Delay(sample, context.Time, cancellationToken);
                second = await target.ReadAllAsync(clients: false, config: false);
            }

            if (first.Count == 0)
            {
                findings.Add(new Finding(Critical, "unreachable", "-", "Connected, but no server could be read: none is connected as a master or a replica.", "Check the endpoints in the configuration string (a cluster needs a reachable node; a Sentinel setup needs serviceName=...)."));
            }

            foreach (var snapshot in first)
            {
                var after = second?.FirstOrDefault(s => s.Endpoint == snapshot.Endpoint);
                findings.AddRange(Evaluate(snapshot, after, thresholds, LocalProcess.Read(snapshot.Endpoint, snapshot.ProcessId)));
                unseen.AddRange(snapshot.Unseen.Select(u => new UnseenReport(snapshot.Endpoint, u.What, u.Reason, u.Missing)));
            }
        }
        catch (TargetException ex)
        {
            findings.Add(new Finding(Critical, "unreachable", "-", ex.Message, "Check the endpoint, credentials and TLS settings in the configuration string; if the server is full, see the message."));
        }

        findings = [.. findings.OrderBy(f => f.Severity switch { Critical => 0, Warning => 1, _ => 2 })];
        var exitCode = ExitCode(findings);
        var status = exitCode switch { 2 => Critical, 1 => Warning, _ => "ok" };
        if (json)
        {
            var report = new DoctorReport(exitCode, status, sample.TotalSeconds, findings, unseen);
            await context.Output.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.DoctorReport));
            return exitCode;
        }

        var console = context.Console;
        var table = new Table().AddColumns("", "Server", "Finding", "Fix");
        foreach (var f in findings)
        {
            table.AddRow(
                f.Severity switch { Critical => "[red bold]CRITICAL[/]", Warning => "[yellow bold]WARNING[/]", _ => "[grey]info[/]" },
                Markup.Escape(f.Endpoint),
                Markup.Escape(f.Summary),
                Markup.Escape(f.Fix));
        }

        console.Write(table);
        Render.Unseen(console, unseen.Select(u => (u.Endpoint, u.What, u.Reason, u.Missing)));
        console.MarkupLine($"Status: {Render.LevelMarkup(status)} (exit code {exitCode})");
        return exitCode;
    }

    public static int ExitCode(IEnumerable<Finding> findings)
    {
        var list = findings.ToList();
        return list.Any(f => f.Severity == Critical) ? 2 : list.Any(f => f.Severity == Warning) ? 1 : 0;
    }

    /// <summary>Every check on one master. <paramref name="after"/> is the same server after the sample, for rates.</summary>
    public static List<Finding> Evaluate(ServerSnapshot server, ServerSnapshot? after, DoctorThresholds thresholds, ProcessLimits limits)
    {
        var findings = new List<Finding>();
        var endpoint = server.Endpoint;
        void Add(string severity, string code, string summary, string fix) => findings.Add(new Finding(severity, code, endpoint, summary, fix));

        // Utilization.
        if (server.Utilization is { } utilization)
        {
            var text = string.Create(CultureInfo.InvariantCulture, $"{server.ConnectedClients} of maxclients {server.MaxClients} connected ({utilization * 100:0.#} %)");
            const string fix = "Find the holders (redispool inspect), close idle ones (redispool kill-idle --idle 10m), recycle the biggest holder, cap pools (redispool budget), or raise maxclients within the file limit.";
            if (utilization >= ClientGrouping.CriticalUtilization)
            {
                Add(Critical, "utilization", text + ": new connections are about to be refused", fix);
            }
            else if (utilization >= ClientGrouping.WarningUtilization)
            {
                Add(Warning, "utilization", text + ": above the 80 % alert line", fix);
            }
        }

        // maxclients against the OS file limit: Redis keeps 32 descriptors for itself and lowers maxclients at start to fit.
        if (server.MaxClients is { } maxClients)
        {
            if (limits.OpenFilesLimit is { } files)
            {
                if (files != long.MaxValue && maxClients + 32 > files)
                {
                    Add(Critical, "file_limit", string.Create(CultureInfo.InvariantCulture, $"maxclients {maxClients} needs {maxClients + 32} file descriptors but the process may open {files}: accepts will fail before maxclients"), "Raise the limit (systemd LimitNOFILE=, ulimit -n, docker --ulimit nofile=) and restart redis-server, or lower maxclients.");
                }
                else if (files != long.MaxValue && maxClients == files - 32)
                {
                    Add(Warning, "file_limit", string.Create(CultureInfo.InvariantCulture, $"maxclients {maxClients} is the open-file limit {files} minus the 32 Redis keeps: Redis lowered it at start (its log says 'maxclients has been reduced')"), "Raise the limit (systemd LimitNOFILE=, ulimit -n, docker --ulimit nofile=) above maxclients + 32 and restart redis-server.");
                }
                else
                {
                    Add(Info, "file_limit", string.Create(CultureInfo.InvariantCulture, $"maxclients {maxClients} fits the process's open-file limit ({(files == long.MaxValue ? "unlimited" : files.ToString(CultureInfo.InvariantCulture))})"), "Nothing to do.");
                }
            }
            else
            {
                Add(Info, "file_limit", $"The OS file limit could not be compared with maxclients: {limits.Why}", "On the server's host: grep 'Max open files' /proc/$(pidof redis-server)/limits must be at least maxclients + 32; the Redis log says 'maxclients has been reduced' when it was not.");
            }
        }

        var clients = server.Clients;
        var others = clients?.Where(c => !server.OwnClientIds.Contains(c.Id) && !c.IsReplication).ToList();

        // Idle clients the server never closes.
        if (server.TimeoutSeconds == 0 && others is not null)
        {
            var threshold = (long)Math.Ceiling(thresholds.LongIdle.TotalSeconds);
            var idle = others.Count(c => c.IdleSeconds >= threshold && !c.IsBlocked && !c.IsPubSub);
            if (idle >= thresholds.LongIdleMinimum && idle >= others.Count * thresholds.LongIdleShare)
            {
                Add(Warning, "timeout_zero", string.Create(CultureInfo.InvariantCulture, $"timeout is 0 (idle clients are never closed) and {idle} of {others.Count} clients have been idle for {Duration.Format(thresholds.LongIdle)} or more"), string.Create(CultureInfo.InvariantCulture, $"Close them now (redispool kill-idle --idle {Duration.Format(thresholds.LongIdle).Replace(" ", string.Empty, StringComparison.Ordinal)}), set CONFIG SET timeout 300 (and in redis.conf), and give pools an idle timeout (RedisPoolKit: Leases.IdleTimeout)."));
            }
        }

        if (server.TcpKeepaliveSeconds == 0)
        {
            Add(Warning, "tcp_keepalive_zero", "tcp-keepalive is 0: sockets of crashed or partitioned clients stay open and count against maxclients", "CONFIG SET tcp-keepalive 300 (and in redis.conf).");
        }

        // Unnamed clients cannot be attributed.
        if (others is { Count: > 0 })
        {
            var unnamed = others.Count(c => c.Name.Length == 0);
            if (unnamed >= thresholds.UnnamedMinimum && unnamed >= others.Count * thresholds.UnnamedShare)
            {
                Add(Warning, "unnamed_clients", string.Create(CultureInfo.InvariantCulture, $"{unnamed} of {others.Count} clients have no name: who holds them cannot be told"), "Name every connection: RedisPoolKit names its sockets (ServiceName, InstanceId); for other clients set a client name (StackExchange.Redis: name=... in the configuration string). Unnamed clients by host: redispool inspect.");
            }

            var holders = ClientGrouping.TopServices(others, 1);
            var top = holders.Count > 0 ? holders[0] : null;
            if (top is not null && others.Count >= 10 && top.Share >= thresholds.OneHolderShare)
            {
                var severity = server.Utilization >= ClientGrouping.WarningUtilization ? Warning : Info;
                // Only a service's sockets come from RedisPoolKit pools; a host of unnamed clients or another name has no pool to size.
                var fix = top.Kind == "service"
                    ? "Check its pool sizes against its instances (redispool budget), look for a connection leak (redispool inspect: oldest and idle), recycle it if it leaks."
                    : top.Kind == "host"
                        ? "Find the processes behind them on that host (ss -tnp to the Redis port), give their connections a name, look for a leak (redispool inspect: oldest and idle) and recycle the leaking one."
                        : "Find the client that sets this name, look for a leak (redispool inspect: oldest and idle) and recycle it if it leaks.";
                Add(severity, "one_holder", string.Create(CultureInfo.InvariantCulture, $"{top.Kind} {top.Name} holds {top.Connections} of {others.Count} clients ({top.Share * 100:0} %)"), fix);
            }
        }

        // Rejections during the sample: clients are being refused right now.
        if (after?.RejectedConnections is { } rejectedAfter && server.RejectedConnections is { } rejectedBefore)
        {
            var seconds = Math.Max(0.001, (after.At - server.At).TotalSeconds);
            if (rejectedAfter > rejectedBefore)
            {
                Add(Critical, "rejecting", string.Create(CultureInfo.InvariantCulture, $"{rejectedAfter - rejectedBefore} connections rejected in {seconds:0.#} s (ERR max number of clients reached)"), "Free connections now: redispool kill-idle --idle 5m --yes, or recycle the biggest holder (redispool inspect); then cap pools (redispool budget).");
            }
            else if (rejectedBefore > 0)
            {
                Add(Info, "rejected_before", string.Create(CultureInfo.InvariantCulture, $"{rejectedBefore} connections were rejected since the server started, none during the {seconds:0.#} s sample"), "Nothing now; alert on the rate of rejected_connections.");
            }
        }
        else if (server.RejectedConnections > 0)
        {
            Add(Info, "rejected_before", string.Create(CultureInfo.InvariantCulture, $"{server.RejectedConnections} connections were rejected since the server started (no sample taken)"), "Rerun with --sample 5s to see whether it still happens.");
        }

        if (server.BlockedClients is > 0 and var blocked)
        {
            var commands = clients is null ? string.Empty : " (" + string.Join(", ", clients.Where(c => c.IsBlocked).GroupBy(c => c.Command, StringComparer.Ordinal).Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key} x{g.Count()}"))) + ")";
            var many = server.MaxClients is > 0 and var m && blocked >= m * thresholds.BlockedShareOfMaxClients;
            Add(many ? Warning : Info, "blocked_clients", string.Create(CultureInfo.InvariantCulture, $"{blocked} clients blocked{commands}"), "Each blocked client holds a socket for its whole wait: bound consumers with leases (RedisPoolKit: Leases.MaxLeases) and shorten the block timeout.");
        }

        return findings;
    }
}
