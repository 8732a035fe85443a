using System.Globalization;
using System.Text.Json;
using RedisPoolKit.Cli.Inspect;
using RedisPoolKit.Cli.Output;
using RedisPoolKit.Cli.Redis;
using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary><c>redispool inspect</c>: utilization and who holds the connections, per master.</summary>
internal static class InspectCommand
{
    public static async Task<int> RunAsync(CommandContext context, string configuration, bool json, int top)
    {
        await using var target = await RedisTarget.ConnectAsync(configuration, context.Time);
        var snapshots = await target.ReadAllAsync(clients: true, config: true);
        var fleetUnseen = new List<(string Endpoint, Unseen Unseen)>();
        var fleetKeys = await target.ReadFleetsAsync(ClientGrouping.ServicePools(snapshots), fleetUnseen);
        var report = ClientGrouping.Report(snapshots, top);
        report = report with
        {
            Fleets = ClientGrouping.Fleets(snapshots, fleetKeys),
            Unseen = [.. report.Unseen, .. fleetUnseen.Select(u => new UnseenReport(u.Endpoint, u.Unseen.What, u.Unseen.Reason, u.Unseen.Missing))],
        };
        if (json)
        {
            await context.Output.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.InspectReport));
            return 0;
        }

        foreach (var server in report.Servers)
        {
            Write(context.Console, server);
        }

        WriteFleets(context.Console, report.Fleets);
        Render.Unseen(context.Console, report.Unseen.Select(u => (u.Endpoint, u.What, u.Reason, u.Missing)));
        return 0;
    }

    /// <summary>One table per fleet: its registrations by the server's clock, next to the sockets each instance holds.</summary>
    public static void WriteFleets(IAnsiConsole console, IReadOnlyList<FleetReport> fleets)
    {
        if (fleets.Count == 0)
        {
            return;
        }

        console.Write(new Rule("[bold]Fleet budgets[/] [grey](registrations by the server's TIME, next to the sockets CLIENT LIST shows)[/]").LeftJustified());
        foreach (var fleet in fleets)
        {
            var at = DateTimeOffset.FromUnixTimeMilliseconds(fleet.ServerTimeMs).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            var expired = fleet.Expired == 0 ? string.Empty : $", [yellow]{fleet.Expired} expired, not yet removed[/]";
            var sockets = fleet.Sockets is { } n
                ? $"; {n} sockets" + (fleet.Nodes.Count > 1 ? " (" + string.Join(", ", fleet.Nodes.Select(x => $"{Markup.Escape(x.Endpoint)}: {x.Sockets}")) + ")" : string.Empty)
                : "; sockets not visible (CLIENT LIST refused)";
            var table = new Table()
                .Title($"[bold]{Markup.Escape(fleet.Service)}[/] / [blue]{Markup.Escape(fleet.Pool)}[/]: {fleet.Live} live{expired}{sockets}")
                .AddColumns("Instance", "Registration", "Sockets");
            foreach (var instance in fleet.Instances)
            {
                var state = instance switch
                {
                    { State: "live", ExpiresInMs: { } ms } => $"[green]live[/], expires in {Milliseconds(ms)}",
                    { State: "expired", ExpiresInMs: { } ms } => $"[yellow]expired {Milliseconds(-ms)} ago[/] (not yet removed: no longer counts)",
                    _ => "[red]not registered[/] (fleet budget off for it, or its heartbeat fails)",
                };
                table.AddRow(Markup.Escape(instance.InstanceId), state, instance.Sockets?.ToString(CultureInfo.InvariantCulture) ?? "?");
            }

            console.Write(table);
            console.MarkupLine($"[grey]{Markup.Escape(fleet.Key)} on {Markup.Escape(fleet.Endpoint)}, server time {at}[/]");
        }

        console.WriteLine();
    }

    private static string Milliseconds(long ms) =>
        ms < 1_000 ? string.Create(CultureInfo.InvariantCulture, $"{ms} ms") : ms < 120_000 ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:0.0} s") : Duration.Format(TimeSpan.FromMilliseconds(ms));

    public static void Write(IAnsiConsole console, ServerReport server)
    {
        console.Write(new Rule($"[bold]{Markup.Escape(server.Endpoint)}[/]{(server.RedisVersion is null ? string.Empty : " [grey](redis " + Markup.Escape(server.RedisVersion) + ")[/]")}").LeftJustified());
        var summary = new Grid().AddColumn().AddColumn();
        summary.AddRow("connected_clients / maxclients", $"{Render.Number(server.ConnectedClients)} / {Render.Number(server.MaxClients)}  {Render.Bar(server.Utilization, 20)} {Render.Percent(server.Utilization)} {Render.LevelMarkup(server.Level)}");
        summary.AddRow("blocked_clients", Render.Number(server.BlockedClients));
        summary.AddRow("rejected_connections", Render.Number(server.RejectedConnections) + " [grey](since start)[/]");
        console.Write(summary);

        if (server.ClientsListed is null)
        {
            console.MarkupLine("[yellow]CLIENT LIST was refused: no grouping (see below).[/]");
            console.WriteLine();
            return;
        }

        if (server.Services.Count > 0)
        {
            var tree = new Tree("[bold]RedisPoolKit pools[/] [grey](service → instance → pool → role: sockets, oldest, longest idle)[/]");
            foreach (var service in server.Services)
            {
                var s = tree.AddNode($"[bold]{Markup.Escape(service.Name)}[/] {service.Connections}");
                foreach (var instance in service.Instances)
                {
                    var i = s.AddNode($"{Markup.Escape(instance.Name)} {instance.Connections}");
                    foreach (var pool in instance.Pools)
                    {
                        var p = i.AddNode($"[blue]{Markup.Escape(pool.Name)}[/] {pool.Connections}");
                        foreach (var role in pool.Roles)
                        {
                            var blocked = role.Blocked == 0 ? string.Empty : $" [red]{role.Blocked} blocked ({Markup.Escape(string.Join(", ", role.BlockedCommands))})[/]";
                            p.AddNode($"{role.Name}: {role.Connections}, oldest {Duration.Seconds(role.OldestAgeSeconds)}, idle up to {Duration.Seconds(role.LongestIdleSeconds)}{blocked}");
                        }
                    }
                }
            }

            console.Write(tree);
        }

        if (server.Unnamed.Count > 0)
        {
            var table = new Table().Title("Unnamed clients").AddColumns("Host", "Library", "Sockets", "Oldest", "Longest idle", "Blocked");
            foreach (var g in server.Unnamed)
            {
                table.AddRow(Markup.Escape(g.Host), Markup.Escape(g.LibraryName.Length == 0 ? "(none)" : g.LibraryName), g.Connections.ToString(System.Globalization.CultureInfo.InvariantCulture), Duration.Seconds(g.OldestAgeSeconds), Duration.Seconds(g.LongestIdleSeconds), g.Blocked.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            console.Write(table);
        }

        if (server.OtherNames.Count > 0)
        {
            var table = new Table().Title("Other named clients").AddColumns("Name", "Sockets", "Oldest", "Longest idle", "Blocked");
            foreach (var g in server.OtherNames)
            {
                table.AddRow(Markup.Escape(g.Name), g.Connections.ToString(System.Globalization.CultureInfo.InvariantCulture), Duration.Seconds(g.OldestAgeSeconds), Duration.Seconds(g.LongestIdleSeconds), g.Blocked.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            console.Write(table);
        }

        if (server.TopHolders.Count > 0)
        {
            var table = new Table().Title("Top holders").AddColumns("Holder", "Kind", "Sockets", "Share");
            foreach (var h in server.TopHolders)
            {
                table.AddRow(Markup.Escape(h.Name), h.Kind, h.Connections.ToString(System.Globalization.CultureInfo.InvariantCulture), Render.Percent(h.Share));
            }

            console.Write(table);
        }

        if (server.Blocked.Count > 0)
        {
            var table = new Table().Title("Blocked clients").AddColumns("Id", "Name", "Address", "Command", "Blocked for");
            foreach (var b in server.Blocked.Take(20))
            {
                table.AddRow(b.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(b.Name), Markup.Escape(b.Address), Markup.Escape(b.Command), Duration.Seconds(b.IdleSeconds));
            }

            console.Write(table);
        }

        console.WriteLine();
    }
}
