using System.Globalization;
using Spectre.Console;

namespace RedisPoolKit.Cli.Output;

internal static class Render
{
    public static string Percent(double? value) =>
        value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v * 100:0.#} %") : "?";

    public static string Number(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "?";

    public static string LevelMarkup(string level) => level switch
    {
        "critical" => "[red bold]critical[/]",
        "warning" => "[yellow bold]warning[/]",
        "ok" => "[green]ok[/]",
        _ => "[grey]" + Markup.Escape(level) + "[/]",
    };

    /// <summary><c>[█████████░░░]</c> for a utilization between 0 and 1.</summary>
    public static string Bar(double? utilization, int width = 30)
    {
        if (utilization is not { } u)
        {
            return new string('?', width);
        }

        var filled = (int)Math.Round(Math.Clamp(u, 0, 1) * width);
        var color = u >= 0.95 ? "red" : u >= 0.8 ? "yellow" : "green";
        return $"[{color}]{new string('█', filled)}[/][grey]{new string('░', width - filled)}[/]";
    }

    /// <summary>A one-line chart of the values, scaled to <paramref name="max"/> (maxclients) when known.</summary>
    public static string Sparkline(IReadOnlyList<long> values, long? max)
    {
        const string blocks = "▁▂▃▄▅▆▇█";
        if (values.Count == 0)
        {
            return string.Empty;
        }

        var top = Math.Max(1, max ?? values.Max());
        return string.Concat(values.Select(v => blocks[(int)Math.Clamp(Math.Round((double)v / top * (blocks.Length - 1)), 0, blocks.Length - 1)]));
    }

    public static void Unseen(IAnsiConsole console, IEnumerable<(string Endpoint, string What, string Reason, string Missing)> unseen)
    {
        var list = unseen.ToList();
        if (list.Count == 0)
        {
            return;
        }

        console.MarkupLine("[yellow bold]Not visible with this connection (partial report):[/]");
        foreach (var u in list)
        {
            console.MarkupLine($"  [yellow]{Markup.Escape(u.Endpoint)}[/] {Markup.Escape(u.What)}: {Markup.Escape(u.Reason)}");
            console.MarkupLine($"      [grey]missing: {Markup.Escape(u.Missing)}[/]");
        }

        console.MarkupLine("  [grey]Grant the user these commands (ACL SETUSER ... +info +client|list +client|id +config|get, and for the fleet budget +scan +zrange +time %R~redispoolkit:fleet:*), or run as a user that has them.[/]");
    }
}
