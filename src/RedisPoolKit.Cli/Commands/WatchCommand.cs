using System.Globalization;
using System.Text.Json;
using RedisPoolKit.Cli.Inspect;
using RedisPoolKit.Cli.Output;
using RedisPoolKit.Cli.Redis;
using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary>One <c>watch --json</c> line. The top-level counters are the most utilized master's.</summary>
internal sealed record WatchSample(
    DateTimeOffset Timestamp,
    long? ConnectedClients,
    [property: System.Text.Json.Serialization.JsonPropertyName("maxclients")] long? MaxClients,
    double? Utilization,
    string Level,
    IReadOnlyList<WatchServer> Servers);

internal sealed record WatchServer(
    string Endpoint,
    long? ConnectedClients,
    [property: System.Text.Json.Serialization.JsonPropertyName("maxclients")] long? MaxClients,
    double? Utilization,
    string Level,
    long? BlockedClients,
    long? RejectedConnections,
    double? RejectedPerSecond,
    IReadOnlyList<Holder> TopServices);

/// <summary><c>redispool watch</c>: a live view, one sample per interval, until Ctrl-C or <c>--duration</c>.</summary>
internal static class WatchCommand
{
    private const int HistoryPoints = 60;

    public static async Task<int> RunAsync(CommandContext context, string configuration, TimeSpan interval, TimeSpan? duration, bool json, int top, CancellationToken cancellationToken)
    {
        await using var target = await RedisTarget.ConnectAsync(configuration, context.Time);
        var started = context.Time.GetTimestamp();
        var previous = new Dictionary<string, ServerSnapshot>(StringComparer.Ordinal);
        var history = new Dictionary<string, Queue<long>>(StringComparer.Ordinal);
        var maxClients = new Dictionary<string, long>(StringComparer.Ordinal);
        var first = true;

        async Task<WatchSample> SampleAsync()
        {
            var servers = new List<WatchServer>();
            foreach (var master in target.Masters())
            {
                // CONFIG is read once per server: only for maxclients when INFO lacks it (Redis before 7).
                var snapshot = await target.ReadAsync(master, clients: true, config: first);
                var endpoint = snapshot.Endpoint;
                if (snapshot.MaxClients is { } m)
                {
                    maxClients[endpoint] = m;
                }

                var max = snapshot.MaxClients ?? (maxClients.TryGetValue(endpoint, out var known) ? known : null);
                double? rejectedRate = null;
                if (previous.TryGetValue(endpoint, out var before) && before.RejectedConnections is { } r0 && snapshot.RejectedConnections is { } r1)
                {
                    rejectedRate = Math.Max(0, r1 - r0) / Math.Max(0.001, (snapshot.At - before.At).TotalSeconds);
                }

                previous[endpoint] = snapshot;
                if (!history.TryGetValue(endpoint, out var points))
                {
                    history[endpoint] = points = new Queue<long>();
                }

                points.Enqueue(snapshot.ConnectedClients ?? 0);
                while (points.Count > HistoryPoints)
                {
                    points.Dequeue();
                }

                double? utilization = snapshot.ConnectedClients is { } c && max is > 0 ? (double)c / max.Value : null;
                servers.Add(new WatchServer(endpoint, snapshot.ConnectedClients, max, utilization, ClientGrouping.Level(utilization), snapshot.BlockedClients, snapshot.RejectedConnections, rejectedRate, ClientGrouping.TopServices([.. (snapshot.Clients ?? []).Where(c => !snapshot.OwnClientIds.Contains(c.Id))], top)));
            }

            first = false;
            var busiest = servers.OrderByDescending(s => s.Utilization ?? -1).FirstOrDefault();
            return new WatchSample(context.Time.GetUtcNow(), busiest?.ConnectedClients, busiest?.MaxClients, busiest?.Utilization, ClientGrouping.Level(busiest?.Utilization), servers);
        }

        bool Done() => cancellationToken.IsCancellationRequested || (duration is { } d && context.Time.GetElapsedTime(started) >= d);

        async Task<bool> WaitAsync()
        {
            var wait = interval;
            if (duration is { } d)
            {
                var left = d - context.Time.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                wait = left < wait ? left : wait;
            }

            try
            {
                await Task.Delay(wait, context.Time, cancellationToken);
                return !Done();
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        if (json)
        {
            do
            {
                var sample = await SampleAsync();
                await context.Output.WriteLineAsync(JsonSerializer.Serialize(sample, CliJsonContext.Compact.WatchSample));
                await context.Output.FlushAsync(CancellationToken.None);
            }
            while (await WaitAsync());

            return 0;
        }

        if (!context.Console.Profile.Capabilities.Interactive)
        {
            // Pipes and logs: one plain line per master and sample instead of a redrawn screen.
            do
            {
                var sample = await SampleAsync();
                foreach (var s in sample.Servers)
                {
                    context.Console.WriteLine(Line(sample.Timestamp, s));
                }
            }
            while (await WaitAsync());

            return 0;
        }

        var initial = await SampleAsync();
        await context.Console.Live(View(initial, history, interval)).AutoClear(false).StartAsync(async live =>
        {
            while (await WaitAsync())
            {
                live.UpdateTarget(View(await SampleAsync(), history, interval));
            }
        });
        return 0;
    }

    public static string Line(DateTimeOffset at, WatchServer s) => string.Create(
        CultureInfo.InvariantCulture,
        $"{at:HH:mm:ss} {s.Endpoint} connected {Render.Number(s.ConnectedClients)}/{Render.Number(s.MaxClients)} ({Render.Percent(s.Utilization)}, {s.Level}) blocked {Render.Number(s.BlockedClients)} rejected/s {(s.RejectedPerSecond is { } r ? r.ToString("0.#", CultureInfo.InvariantCulture) : "-")} top: {string.Join(", ", s.TopServices.Select(t => $"{t.Name} {t.Connections}"))}");

    private static Table View(WatchSample sample, Dictionary<string, Queue<long>> history, TimeSpan interval)
    {
        var table = new Table().Title(string.Create(CultureInfo.InvariantCulture, $"redispool watch, {sample.Timestamp:HH:mm:ss} UTC, every {Duration.Format(interval)} (Ctrl-C to stop)"))
            .AddColumns("Server", "Utilization", "Connected", string.Create(CultureInfo.InvariantCulture, $"Last {Duration.Format(interval * HistoryPoints)}"), "Blocked", "Rejected/s", "Top services");
        foreach (var s in sample.Servers)
        {
            var points = history.TryGetValue(s.Endpoint, out var q) ? q.ToList() : [];
            table.AddRow(
                new Markup(Markup.Escape(s.Endpoint)),
                new Markup($"{Render.Bar(s.Utilization, 10)} {Render.Percent(s.Utilization)} {Render.LevelMarkup(s.Level)}"),
                new Markup($"{Render.Number(s.ConnectedClients)} / {Render.Number(s.MaxClients)}"),
                new Markup(Render.Sparkline(points, s.MaxClients)),
                new Markup(Render.Number(s.BlockedClients)),
                new Markup(s.RejectedPerSecond is { } r ? (r > 0 ? "[red bold]" : string.Empty) + r.ToString("0.#", CultureInfo.InvariantCulture) + (r > 0 ? "[/]" : string.Empty) : "-"),
                new Markup(Markup.Escape(string.Join("\n", s.TopServices.Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Name} {t.Connections} ({t.Share * 100:0} %)"))))));
        }

        return table;
    }
}
