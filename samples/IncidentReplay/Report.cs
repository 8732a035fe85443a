using System.Globalization;
using System.Net;
using System.Text;
using ScottPlot;
using Spectre.Console;
using Color = ScottPlot.Color;

namespace IncidentReplay;

/// <summary>The side-by-side comparison: console table, verdict, HTML report and charts.</summary>
internal sealed class Report(Scenario scenario, PhaseRecorder naive, PhaseRecorder pooled)
{
    public const string HtmlFile = "incident-report.html";
    public static readonly string[] ChartFiles = ["connected-clients.png", "errors-per-second.png", "p99-latency.png"];

    private static readonly Color NaiveColor = Color.FromHex("#d62728");
    private static readonly Color PooledColor = Color.FromHex("#2ca02c");

    public bool Passed =>
        pooled.FailedToRun is null
        && pooled.MaxClientsErrors == 0
        && pooled.PeakConnectedClients < scenario.MaxClients
        && pooled.RejectedConnectionsDelta == 0
        && pooled.Lost == 0
        && pooled.LeftInQueue == 0;

    public string Verdict
    {
        get
        {
            if (pooled.FailedToRun is not null)
            {
                return $"FAIL: phase B could not run ({pooled.FailedToRun}).";
            }

            if (Passed)
            {
                return $"PASS: naive code hit maxclients ({naive.PeakConnectedClients}/{scenario.MaxClients} connected, {naive.RejectedConnectionsDelta} connections rejected, {naive.MaxClientsErrors} max-clients errors); "
                    + $"RedisPoolKit peaked at {pooled.PeakConnectedClients}/{scenario.MaxClients} with no max-clients error and no lost notification.";
            }

            return $"FAIL: phase B {Describe()}.";

            string Describe()
            {
                var problems = new List<string>();
                if (pooled.MaxClientsErrors > 0) problems.Add($"had {pooled.MaxClientsErrors} max-clients errors");
                if (pooled.PeakConnectedClients >= scenario.MaxClients) problems.Add($"reached {pooled.PeakConnectedClients}/{scenario.MaxClients} connected clients");
                if (pooled.RejectedConnectionsDelta > 0) problems.Add($"caused {pooled.RejectedConnectionsDelta} rejected connections");
                if (pooled.Lost > 0) problems.Add($"lost {pooled.Lost} notifications");
                if (pooled.LeftInQueue > 0) problems.Add($"left {pooled.LeftInQueue} notifications unconsumed after the drain");
                return string.Join(", ", problems);
            }
        }
    }

    public IReadOnlyList<(string Metric, string Naive, string Pooled)> Rows()
    {
        var rows = new List<(string, string, string)>
        {
            ("wall time", Seconds(naive.WallTime), Seconds(pooled.WallTime)),
            ("requests", N(naive.Requests), N(pooled.Requests)),
            ("successes", N(naive.Successes), N(pooled.Successes)),
            ("errors", N(naive.Errors), N(pooled.Errors)),
        };
        foreach (var kind in naive.ErrorsByKind.Keys.Union(pooled.ErrorsByKind.Keys).Order(StringComparer.Ordinal))
        {
            rows.Add(($"  {kind}", N(naive.ErrorsByKind.GetValueOrDefault(kind)), N(pooled.ErrorsByKind.GetValueOrDefault(kind))));
        }

        foreach (var service in naive.ErrorsByService.Keys.Union(pooled.ErrorsByService.Keys).Order(StringComparer.Ordinal))
        {
            rows.Add(($"  errors in {service}", N(naive.ErrorsByService.GetValueOrDefault(service)), N(pooled.ErrorsByService.GetValueOrDefault(service))));
        }

        rows.AddRange(
        [
            ("latency p50 (every request, success or error)", Millis(naive, 50), Millis(pooled, 50)),
            ("latency p99", Millis(naive, 99), Millis(pooled, 99)),
            ("latency max", Millis(naive, 100), Millis(pooled, 100)),
            ($"peak connected_clients (maxclients {scenario.MaxClients})", N(naive.PeakConnectedClients), N(pooled.PeakConnectedClients)),
            ("rejected_connections (delta)", N(naive.RejectedConnectionsDelta), N(pooled.RejectedConnectionsDelta)),
            ("peak blocked_clients", N(naive.PeakBlockedClients), N(pooled.PeakBlockedClients)),
            ("notifications acknowledged", N(naive.Produced), N(pooled.Produced)),
            ("notifications refused at push", N(naive.PushFailures), N(pooled.PushFailures)),
            ("consumed exactly once", N(naive.ConsumedExactlyOnce), N(pooled.ConsumedExactlyOnce)),
            ("duplicated", N(naive.Duplicated), N(pooled.Duplicated)),
            ("lost", N(naive.Lost), N(pooled.Lost)),
            ("left in queue after drain", N(naive.LeftInQueue), N(pooled.LeftInQueue)),
        ]);
        if (naive.ConsumedAfterFailedPush + pooled.ConsumedAfterFailedPush > 0)
        {
            rows.Add(("delivered although the push reported an error", N(naive.ConsumedAfterFailedPush), N(pooled.ConsumedAfterFailedPush)));
        }

        return rows;
    }

    public void WriteConsole()
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("metric")
            .AddColumn(new TableColumn($"[red]{Markup.Escape(naive.Title)}[/]").RightAligned())
            .AddColumn(new TableColumn($"[green]{Markup.Escape(pooled.Title)}[/]").RightAligned());
        foreach (var (metric, a, b) in Rows())
        {
            table.AddRow(Markup.Escape(metric), Markup.Escape(a), Markup.Escape(pooled.FailedToRun is null ? b : "-"));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Passed ? $"[green]{Markup.Escape(Verdict)}[/]" : $"[red]{Markup.Escape(Verdict)}[/]");
    }

    public string WriteFiles(string directory, IReadOnlyList<string> naiveLabels, IReadOnlyList<string> pooledLabels)
    {
        Directory.CreateDirectory(directory);
        WriteConnectedClientsChart(Path.Combine(directory, ChartFiles[0]));
        WriteSeriesChart(Path.Combine(directory, ChartFiles[1]), "Client errors per second", "errors / s",
            naive.ErrorsPerSecond().Select(e => ((double)e.Second, (double)e.Errors)), pooled.ErrorsPerSecond().Select(e => ((double)e.Second, (double)e.Errors)));
        WriteSeriesChart(Path.Combine(directory, ChartFiles[2]), "p99 latency per second (order-service, cart-service, notify)", "p99 (ms)",
            naive.P99PerSecond().Select(e => ((double)e.Second, e.P99Millis)), pooled.P99PerSecond().Select(e => ((double)e.Second, e.P99Millis)));

        var html = new StringBuilder();
        html.Append(CultureInfo.InvariantCulture, $$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Redis max-clients incident replay</title>
            <style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px}td.n{text-align:right}.pass{color:#2ca02c}.fail{color:#d62728}</style>
            </head><body>
            <h1>Redis max-clients incident replay</h1>
            <p>maxclients {{scenario.MaxClients}} (standing for 1000); {{Scenario.InstancesPerService}} instances each of order-service, cart-service and notification-worker;
            {{scenario.SteadyWorkers}} worker(s) per instance in steady state, {{scenario.SpikeWorkers}} during the {{Scenario.SpikeFactor}}x spike
            ({{Seconds(scenario.SpikeStart)}} to {{Seconds(scenario.SpikeEnd)}} of each {{Seconds(scenario.Duration)}} phase).</p>
            <p class="{{(Passed ? "pass" : "fail")}}"><b>{{E(Verdict)}}</b></p>
            """);
        html.Append("<h2>Phase A: naive StackExchange.Redis</h2><ul>");
        foreach (var label in naiveLabels) html.Append(CultureInfo.InvariantCulture, $"<li>{E(label)}</li>");
        html.Append("</ul><h2>Phase B: RedisPoolKit</h2><ul>");
        foreach (var label in pooledLabels) html.Append(CultureInfo.InvariantCulture, $"<li>{E(label)}</li>");
        html.Append("</ul><h2>Side by side</h2><table><tr><th>metric</th><th>")
            .Append(E(naive.Title)).Append("</th><th>").Append(E(pooled.Title)).Append("</th></tr>");
        foreach (var (metric, a, b) in Rows())
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(metric)}</td><td class=\"n\">{E(a)}</td><td class=\"n\">{E(pooled.FailedToRun is null ? b : "-")}</td></tr>");
        }

        html.Append("</table><h2>Charts</h2>");
        foreach (var chart in ChartFiles)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p><img src=\"{chart}\" alt=\"{chart}\" width=\"900\"></p>");
        }

        html.Append("<p>Server figures come from INFO clients/stats sampled every 250 ms over one admin connection (counted in connected_clients). "
            + "A request not answered within the 2 s request budget counts as a timeout (its caller gave up, as an HTTP client would); latency covers every request, success or error. "
            + "Max-clients errors are RedisConnectionExceptions while the server's rejected_connections rises (StackExchange.Redis never shows the server's text) and RedisPoolCircuitOpenException.</p></body></html>");
        var path = Path.Combine(directory, HtmlFile);
        File.WriteAllText(path, html.ToString());
        return path;
    }

    private void WriteConnectedClientsChart(string path)
    {
        var plot = NewPlot("connected_clients (server INFO, every 250 ms)", "connected_clients");
        AddLine(plot, naive.Samples.Select(s => (s.Seconds, (double)s.ConnectedClients)), naive.Title, NaiveColor);
        AddLine(plot, pooled.Samples.Select(s => (s.Seconds, (double)s.ConnectedClients)), pooled.Title, PooledColor);
        var limit = plot.Add.HorizontalLine(scenario.MaxClients, 2, Colors.Black, LinePattern.Dashed);
        limit.LegendText = $"maxclients {scenario.MaxClients}";
        AddSpike(plot);
        plot.Axes.SetLimitsX(0, LastSecond);
        plot.Axes.SetLimitsY(0, scenario.MaxClients * 1.15);
        plot.SavePng(path, 900, 420);
    }

    private void WriteSeriesChart(string path, string title, string yLabel, IEnumerable<(double, double)> naivePoints, IEnumerable<(double, double)> pooledPoints)
    {
        var plot = NewPlot(title, yLabel);
        AddLine(plot, naivePoints, naive.Title, NaiveColor);
        AddLine(plot, pooledPoints, pooled.Title, PooledColor);
        AddSpike(plot);
        plot.Axes.AutoScaleY();
        plot.Axes.SetLimitsX(0, LastSecond);
        plot.Axes.SetLimitsY(0, Math.Max(1, plot.Axes.GetLimits().Top));
        plot.SavePng(path, 900, 420);
    }

    private double LastSecond => Math.Ceiling(Math.Max(naive.WallTime.TotalSeconds, pooled.WallTime.TotalSeconds)) + 1;

    private void AddSpike(Plot plot)
    {
        var span = plot.Add.HorizontalSpan(scenario.SpikeStart.TotalSeconds, scenario.SpikeEnd.TotalSeconds);
        span.FillStyle.Color = Colors.Orange.WithAlpha(0.12);
        span.LineStyle.Width = 0;
        span.LegendText = $"{Scenario.SpikeFactor}x spike";
    }

    private static Plot NewPlot(string title, string yLabel)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel("seconds since the phase started");
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    private static void AddLine(Plot plot, IEnumerable<(double X, double Y)> points, string label, Color color)
    {
        var list = points.ToList();
        if (list.Count == 0)
        {
            return;
        }

        var line = plot.Add.ScatterLine(list.Select(p => p.X).ToArray(), list.Select(p => p.Y).ToArray(), color);
        line.LineWidth = 2;
        line.LegendText = label;
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.0 's'", CultureInfo.InvariantCulture);

    private static string Millis(PhaseRecorder phase, double percentile) =>
        phase.Latency.TotalCount == 0
            ? "-"
            : (phase.Latency.GetValueAtPercentile(percentile) / 1000.0).ToString("0.0 'ms'", CultureInfo.InvariantCulture);
}
