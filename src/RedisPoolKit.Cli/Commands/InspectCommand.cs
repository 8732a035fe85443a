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
        var report = ClientGrouping.Report(await target.ReadAllAsync(clients: true, config: true), top);
        if (json)
        {
            await context.Output.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.InspectReport));
            return 0;
        }

        foreach (var server in report.Servers)
        {
            Write(context.Console, server);
        }

        Render.Unseen(context.Console, report.Unseen.Select(u => (u.Endpoint, u.What, u.Reason, u.Missing)));
        return 0;
    }

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
