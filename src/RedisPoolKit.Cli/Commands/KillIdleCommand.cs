using System.Globalization;
using System.Text.Json;
using RedisPoolKit.Cli.Inspect;
using RedisPoolKit.Cli.Output;
using RedisPoolKit.Cli.Redis;
using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary>Which clients <c>kill-idle</c> may close.</summary>
internal sealed record IdleCriteria(
    TimeSpan Idle,
    string? Service = null,
    string? Instance = null,
    string? Pool = null,
    string? Role = null,
    bool UnnamedOnly = false,
    bool IncludePubSub = false,
    bool IncludeBlocked = false,
    int Max = 20);

internal sealed record KillCandidate(string Endpoint, long Id, string Name, string Address, long IdleSeconds, long AgeSeconds, string Flags, string Command, string Reason)
{
    public bool? Killed { get; init; }

    public string? Error { get; init; }
}

/// <summary><c>redispool kill-idle --json</c>. <see cref="Skipped"/> counts clients idle long enough and matching the filters that were kept, by why.</summary>
internal sealed record KillIdleReport(
    bool DryRun,
    long IdleSeconds,
    int Max,
    IReadOnlyList<KillCandidate> Candidates,
    int Killed,
    IReadOnlyDictionary<string, int> Skipped,
    IReadOnlyList<UnseenReport> Unseen);

/// <summary><c>redispool kill-idle</c>: closes long-idle clients, only with <c>--yes</c>, never the tool's own, replication links, pub/sub or blocked clients unless asked.</summary>
internal static class KillIdleCommand
{
    public const string SkippedOwn = "own_connection";
    public const string SkippedReplication = "replication";
    public const string SkippedPubSub = "pub_sub";
    public const string SkippedBlocked = "blocked";
    public const string SkippedOverMax = "over_max";

    /// <summary>The clients to close, longest idle first, at most <see cref="IdleCriteria.Max"/>; and what was kept back, by reason.</summary>
    public static (List<KillCandidate> Selected, Dictionary<string, int> Skipped) Select(IReadOnlyList<ServerSnapshot> servers, IdleCriteria criteria)
    {
        var skipped = new Dictionary<string, int>(StringComparer.Ordinal);
        var eligible = new List<KillCandidate>();
        var threshold = (long)Math.Ceiling(criteria.Idle.TotalSeconds);
        foreach (var server in servers)
        {
            foreach (var client in server.Clients ?? [])
            {
                if (client.IdleSeconds < threshold || !Matches(client, criteria))
                {
                    continue;
                }

                var keep = server.OwnClientIds.Contains(client.Id) ? SkippedOwn
                    : client.IsReplication ? SkippedReplication
                    : client.IsPubSub && !criteria.IncludePubSub ? SkippedPubSub
                    : client.IsBlocked && !criteria.IncludeBlocked ? SkippedBlocked
                    : null;
                if (keep is not null)
                {
                    skipped[keep] = skipped.GetValueOrDefault(keep) + 1;
                    continue;
                }

                eligible.Add(new KillCandidate(
                    server.Endpoint,
                    client.Id,
                    client.Name,
                    client.Address,
                    client.IdleSeconds,
                    client.AgeSeconds,
                    client.Flags,
                    client.Command,
                    string.Create(CultureInfo.InvariantCulture, $"idle {Duration.Seconds(client.IdleSeconds)} >= {Duration.Format(criteria.Idle)}{Describe(criteria)}")));
            }
        }

        var selected = eligible.OrderByDescending(c => c.IdleSeconds).ThenBy(c => c.Id).Take(criteria.Max).ToList();
        if (eligible.Count > selected.Count)
        {
            skipped[SkippedOverMax] = eligible.Count - selected.Count;
        }

        return (selected, skipped);
    }

    public static async Task<int> RunAsync(CommandContext context, string configuration, IdleCriteria criteria, bool yes, bool json)
    {
        await using var target = await RedisTarget.ConnectAsync(configuration, context.Time);
        var servers = await target.ReadAllAsync(clients: true, config: false);
        var unseen = servers.SelectMany(s => s.Unseen.Select(u => new UnseenReport(s.Endpoint, u.What, u.Reason, u.Missing))).ToList();
        var (selected, skipped) = Select(servers, criteria);
        var killed = 0;
        if (yes)
        {
            for (var i = 0; i < selected.Count; i++)
            {
                var (ok, error) = await target.KillAsync(selected[i].Endpoint, selected[i].Id);
                selected[i] = selected[i] with { Killed = ok, Error = error };
                killed += ok ? 1 : 0;
            }
        }

        var blind = servers.Any(s => s.Clients is null);
        var report = new KillIdleReport(!yes, (long)Math.Ceiling(criteria.Idle.TotalSeconds), criteria.Max, selected, killed, skipped, unseen);
        var exitCode = blind ? 2 : selected.Any(c => c.Killed == false) ? 1 : 0;
        if (json)
        {
            await context.Output.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.KillIdleReport));
            return exitCode;
        }

        var console = context.Console;
        if (blind)
        {
            console.MarkupLine("[red bold]CLIENT LIST was refused on at least one server: its idle clients cannot be selected (see below).[/]");
        }

        if (selected.Count == 0)
        {
            console.MarkupLine($"No client matches: idle >= {Duration.Format(criteria.Idle)}{Markup.Escape(Describe(criteria))}.");
        }
        else
        {
            var table = new Table().AddColumns("Server", "Id", "Name", "Address", "Idle", "Age", "Flags", "Last command", "Why", yes ? "Closed" : "Would close");
            foreach (var c in selected)
            {
                table.AddRow(
                    Markup.Escape(c.Endpoint),
                    c.Id.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(c.Name.Length == 0 ? "(unnamed)" : c.Name),
                    Markup.Escape(c.Address),
                    Duration.Seconds(c.IdleSeconds),
                    Duration.Seconds(c.AgeSeconds),
                    Markup.Escape(c.Flags),
                    Markup.Escape(c.Command),
                    Markup.Escape(c.Reason),
                    !yes ? "yes" : c.Killed == true ? "[green]closed[/]" : "[red]" + Markup.Escape(c.Error ?? "failed") + "[/]");
            }

            console.Write(table);
        }

        if (skipped.Count > 0)
        {
            console.MarkupLine("Kept: " + Markup.Escape(string.Join(", ", skipped.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Value} {KeptText(s.Key)}")))));
        }

        console.MarkupLine(yes
            ? string.Create(CultureInfo.InvariantCulture, $"Closed {killed} of {selected.Count} client(s) with CLIENT KILL ID.")
            : string.Create(CultureInfo.InvariantCulture, $"[bold]Dry run:[/] nothing was closed. Add --yes to close these {selected.Count} client(s)."));
        Render.Unseen(console, unseen.Select(u => (u.Endpoint, u.What, u.Reason, u.Missing)));
        return exitCode;
    }

    private static string KeptText(string reason) => reason switch
    {
        SkippedOwn => "own connection of this tool",
        SkippedReplication => "replication link(s), never closed",
        SkippedPubSub => "pub/sub client(s) (--include-pubsub)",
        SkippedBlocked => "blocked client(s) (--include-blocked)",
        SkippedOverMax => "over --max",
        _ => reason,
    };

    private static bool Matches(ClientEntry client, IdleCriteria criteria)
    {
        if (criteria.UnnamedOnly)
        {
            return client.Name.Length == 0;
        }

        if (criteria.Service is null && criteria.Instance is null && criteria.Pool is null && criteria.Role is null)
        {
            return true;
        }

        return client.PoolName is { } name
            && (criteria.Service is null || name.Service == criteria.Service)
            && (criteria.Instance is null || name.Instance == criteria.Instance)
            && (criteria.Pool is null || name.Pool == criteria.Pool)
            && (criteria.Role is null || name.Role == criteria.Role);
    }

    private static string Describe(IdleCriteria criteria)
    {
        var parts = new List<string>();
        if (criteria.UnnamedOnly)
        {
            parts.Add("unnamed");
        }

        if (criteria.Service is not null)
        {
            parts.Add("service " + criteria.Service);
        }

        if (criteria.Instance is not null)
        {
            parts.Add("instance " + criteria.Instance);
        }

        if (criteria.Pool is not null)
        {
            parts.Add("pool " + criteria.Pool);
        }

        if (criteria.Role is not null)
        {
            parts.Add("role " + criteria.Role);
        }

        return parts.Count == 0 ? string.Empty : ", " + string.Join(", ", parts);
    }
}
