using System.Globalization;
using System.Text.Json;
using RedisPoolKit.Cli.Output;
using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary>The inputs of <c>redispool budget</c>.</summary>
/// <param name="MaxClients">The server's <c>maxclients</c> (per master in a cluster: every instance connects to every master).</param>
/// <param name="Instances">Service instances in steady state.</param>
/// <param name="Pools">RedisPoolKit pools per instance that connect to this server.</param>
/// <param name="Surge">Instances running at once during a deploy, as a multiple of <paramref name="Instances"/> (2.0: old and new side by side).</param>
/// <param name="Headroom">Share of <c>maxclients</c> kept free even at the surge (0.2: never above 80 %, the usual alert).</param>
/// <param name="Reserved">Sockets other clients hold (replicas, admin sessions, exporters, services without a pool).</param>
internal sealed record BudgetInput(long MaxClients, int Instances, int Pools = 1, double Surge = 2.0, double Headroom = 0.2, int Reserved = 0);

/// <summary><c>redispool budget --json</c>.</summary>
internal sealed record BudgetReport(
    [property: System.Text.Json.Serialization.JsonPropertyName("maxclients")] long MaxClients,
    int Instances,
    int Pools,
    double Surge,
    double Headroom,
    int Reserved,
    bool Fits,
    int MaxConnections,
    long UsableSockets,
    int InstancesAtSurge,
    long SocketsSteady,
    long SocketsAtSurge,
    double UtilizationSteady,
    double UtilizationAtSurge,
    string? Problem,
    string? Appsettings);

/// <summary><c>redispool budget</c>: the per-instance <c>MaxConnections</c> that keeps a deploy surge under the headroom. Pure arithmetic.</summary>
internal static class BudgetCommand
{
    public static BudgetReport Calculate(BudgetInput input)
    {
        // Sockets the fleet may hold at its peak: what stays under (1 - headroom) of maxclients, less what others hold.
        var usable = (long)Math.Floor(input.MaxClients * (1 - input.Headroom)) - input.Reserved;
        var atSurge = (int)Math.Ceiling(input.Instances * input.Surge - 1e-9);
        var perPool = usable <= 0 ? 0 : (int)Math.Min(int.MaxValue, usable / ((long)atSurge * input.Pools));
        var fits = perPool >= 1;
        var steady = (long)input.Instances * input.Pools * perPool;
        var surge = (long)atSurge * input.Pools * perPool;
        string? problem = null;
        if (!fits)
        {
            var needed = (long)Math.Ceiling(((long)atSurge * input.Pools + input.Reserved) / (1 - input.Headroom));
            problem = string.Create(
                CultureInfo.InvariantCulture,
                $"{atSurge} instances x {input.Pools} pool(s) at the surge need at least one socket each: {(long)atSurge * input.Pools + input.Reserved} sockets with the reserved ones, more than {Math.Max(0, usable + input.Reserved)} ({(1 - input.Headroom) * 100:0.#} % of maxclients {input.MaxClients}). Raise maxclients to at least {needed}, lower --surge (deploy in smaller batches) or run fewer instances.");
        }

        return new BudgetReport(
            input.MaxClients,
            input.Instances,
            input.Pools,
            input.Surge,
            input.Headroom,
            input.Reserved,
            fits,
            perPool,
            usable,
            atSurge,
            steady,
            surge,
            input.MaxClients == 0 ? 0 : (double)(steady + input.Reserved) / input.MaxClients,
            input.MaxClients == 0 ? 0 : (double)(surge + input.Reserved) / input.MaxClients,
            problem,
            fits ? Appsettings(perPool, input.Pools) : null);
    }

    /// <summary>The <c>appsettings.json</c> fragment for a pool registered with <c>AddRedisPool(name, configuration.GetSection("Redis:Pools:name"))</c>.</summary>
    public static string Appsettings(int maxConnections, int pools)
    {
        var names = pools == 1 ? ["default"] : Enumerable.Range(1, pools).Select(i => string.Create(CultureInfo.InvariantCulture, $"pool{i}")).ToArray();
        // One socket carries one multiplexer; with a single socket there is no room for a second multiplexer.
        var extra = maxConnections == 1 ? ", \"MaxMultiplexers\": 1" : string.Empty;
        var lines = names.Select(n => string.Create(CultureInfo.InvariantCulture, $"      \"{n}\": {{ \"MaxConnections\": {maxConnections}{extra} }}"));
        return "{\n  \"Redis\": {\n    \"Pools\": {\n" + string.Join(",\n", lines) + "\n    }\n  }\n}";
    }

    public static async Task<int> RunAsync(CommandContext context, BudgetInput input, bool json)
    {
        var report = Calculate(input);
        if (json)
        {
            await context.Output.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.BudgetReport));
            return report.Fits ? 0 : 2;
        }

        var console = context.Console;
        if (!report.Fits)
        {
            console.MarkupLine($"[red bold]Does not fit:[/] {Markup.Escape(report.Problem!)}");
            return 2;
        }

        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow("[bold]MaxConnections per pool and instance[/]", $"[bold green]{report.MaxConnections}[/]");
        grid.AddRow("usable sockets", string.Create(CultureInfo.InvariantCulture, $"{report.UsableSockets} = {(1 - input.Headroom) * 100:0.#} % of maxclients {input.MaxClients} - {input.Reserved} reserved"));
        grid.AddRow("steady state", string.Create(CultureInfo.InvariantCulture, $"{input.Instances} instances x {input.Pools} pool(s) x {report.MaxConnections} = {report.SocketsSteady} sockets ({Render.Percent(report.UtilizationSteady)} with reserved)"));
        grid.AddRow("deploy surge", string.Create(CultureInfo.InvariantCulture, $"{report.InstancesAtSurge} instances x {input.Pools} pool(s) x {report.MaxConnections} = {report.SocketsAtSurge} sockets ({Render.Percent(report.UtilizationAtSurge)} with reserved)"));
        console.Write(grid);
        console.WriteLine();
        console.MarkupLine("[grey]appsettings.json (a pool's breaker may open one extra probe socket per break interval while it is open; keep it inside --reserved if that matters):[/]");
        console.WriteLine(report.Appsettings!);
        if (report.MaxConnections < 3)
        {
            console.MarkupLine("[yellow]Fewer than 3 sockets per pool leaves no room for leases (blocking commands): set Leases.MaxLeases to 0 or give the pool more room.[/]");
        }

        return 0;
    }
}
