using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using ScottPlot;
using Spectre.Console;
using Color = ScottPlot.Color;

namespace IncidentReplay;

/// <summary>The three phases side by side: console table, verdict, HTML report (with the run's metadata) and charts.</summary>
internal sealed class Report(Scenario scenario, ReplayOptions options, PhaseRecorder naive, PhaseRecorder idiomatic, PhaseRecorder pooled, string redisVersion)
{
    public const string HtmlFile = "incident-report.html";
    public static readonly string[] ChartFiles = ["connected-clients.png", "errors-per-second.png", "p99-latency.png", "completed-per-second.png"];

    /// <summary>Rates and p99 are drawn over this many seconds: a 2 s request budget makes single seconds flicker between 0 and 2 s.</summary>
    public const int RollingSeconds = 3;

    private static readonly Color[] PhaseColors = [Color.FromHex("#d62728"), Color.FromHex("#1f77b4"), Color.FromHex("#2ca02c")];

    private readonly PhaseRecorder[] _phases = [naive, idiomatic, pooled];
    private readonly DateTimeOffset _finished = DateTimeOffset.UtcNow;

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
                return $"FAIL: phase C could not run ({pooled.FailedToRun}).";
            }

            if (Passed)
            {
                return $"PASS: naive code hit maxclients ({naive.PeakConnectedClients}/{scenario.MaxClients} connected, {naive.RejectedConnectionsDelta} connections rejected, {naive.MaxClientsErrors} max-clients errors); "
                    + $"idiomatic StackExchange.Redis peaked at {idiomatic.PeakConnectedClients}/{scenario.MaxClients} ({idiomatic.RejectedConnectionsDelta} rejected); "
                    + $"RedisPoolKit peaked at {pooled.PeakConnectedClients}/{scenario.MaxClients} with no max-clients error and no lost notification.";
            }

            var problems = new List<string>();
            if (pooled.MaxClientsErrors > 0) problems.Add($"had {pooled.MaxClientsErrors} max-clients errors");
            if (pooled.PeakConnectedClients >= scenario.MaxClients) problems.Add($"reached {pooled.PeakConnectedClients}/{scenario.MaxClients} connected clients");
            if (pooled.RejectedConnectionsDelta > 0) problems.Add($"caused {pooled.RejectedConnectionsDelta} rejected connections");
            if (pooled.Lost > 0) problems.Add($"lost {pooled.Lost} notifications");
            if (pooled.LeftInQueue > 0) problems.Add($"left {pooled.LeftInQueue} notifications unconsumed after the drain");
            return $"FAIL: phase C {string.Join(", ", problems)}.";
        }
    }

    /// <summary>One row per figure; every total is on its own row and adds up (offered = completed + failed).</summary>
    public IReadOnlyList<(string Metric, string[] Values)> Rows()
    {
        var rows = new List<(string, string[])>
        {
            ("wall time", All(p => Seconds(p.WallTime))),
            ("requests offered (same open-loop schedule in every phase)", All(p => N(p.Requests))),
            ("  completed within the 2 s budget", All(p => N(p.Successes))),
            ("  failed", All(p => N(p.Errors))),
        };
        foreach (var kind in _phases.SelectMany(p => p.ErrorsByKind.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            rows.Add(($"    {kind}", All(p => N(p.ErrorsByKind.GetValueOrDefault(kind)))));
        }

        foreach (var service in _phases.SelectMany(p => p.OfferedByService.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            rows.Add(($"{service}: offered / completed / failed", All(p => $"{N(p.OfferedByService.GetValueOrDefault(service))} / {N(p.CompletedByService.GetValueOrDefault(service))} / {N(p.ErrorsByService.GetValueOrDefault(service))}")));
        }

        rows.AddRange(
        [
            ("latency of completed requests p50", All(p => Millis(p, 50))),
            ("  p99", All(p => Millis(p, 99))),
            ("  max", All(p => Millis(p, 100))),
            ($"peak connected_clients (maxclients {scenario.MaxClients})", All(p => N(p.PeakConnectedClients))),
            ("connected_clients at the end of the phase", All(p => p.Samples.Count == 0 ? "-" : N(p.Samples[^1].ConnectedClients))),
            ("rejected_connections (delta)", All(p => N(p.RejectedConnectionsDelta))),
            ("peak blocked_clients", All(p => N(p.PeakBlockedClients))),
            ("notification-worker BLPOP errors (not requests)", All(p => N(p.ConsumerErrors.Values.Sum())))
        ]);
        foreach (var kind in _phases.SelectMany(p => p.ConsumerErrors.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            rows.Add(($"  {kind}", All(p => N(p.ConsumerErrors.GetValueOrDefault(kind)))));
        }

        rows.AddRange(
        [
            ("notifications acknowledged", All(p => N(p.Produced))),
            ("  consumed exactly once", All(p => N(p.ConsumedExactlyOnce))),
            ("  lost", All(p => N(p.Lost))),
            ("  left in queue after drain", All(p => N(p.LeftInQueue))),
            ("notifications refused at push", All(p => N(p.PushFailures))),
            ("duplicated deliveries", All(p => N(p.Duplicated))),
            ("pool signals (breaker, utilization, rejection seconds)", All(p => p == pooled ? N(p.Signals.Count + p.RejectionsPerSecond().Count()) : "-")),
        ]);
        if (_phases.Any(p => p.ConsumedAfterFailedPush > 0))
        {
            rows.Add(("delivered although the push reported an error", All(p => N(p.ConsumedAfterFailedPush))));
        }

        return rows;

        string[] All(Func<PhaseRecorder, string> value) => [.. _phases.Select(p => p.FailedToRun is null ? value(p) : "-")];
    }

    public void WriteConsole()
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("metric");
        foreach (var (phase, color) in _phases.Zip(new[] { "red", "blue", "green" }))
        {
            table.AddColumn(new TableColumn($"[{color}]{Markup.Escape(phase.Title)}[/]").RightAligned());
        }

        foreach (var (metric, values) in Rows())
        {
            table.AddRow([Markup.Escape(metric), .. values.Select(Markup.Escape)]);
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Passed ? $"[green]{Markup.Escape(Verdict)}[/]" : $"[red]{Markup.Escape(Verdict)}[/]");
    }

    public string WriteFiles(string directory, IReadOnlyList<IReadOnlyList<string>> labels)
    {
        Directory.CreateDirectory(directory);
        WriteConnectedClientsChart(Path.Combine(directory, ChartFiles[0]));
        WriteSeriesChart(Path.Combine(directory, ChartFiles[1]), $"Failed requests per second (rolling {RollingSeconds} s mean)", "failed / s",
            p => p.RatesPerSecond(RollingSeconds).Select(r => ((double)r.Second, r.Failed)));
        WriteSeriesChart(Path.Combine(directory, ChartFiles[2]), $"p99 latency of completed requests (rolling {RollingSeconds} s window)", "p99 (ms)",
            p => p.RollingP99(RollingSeconds).Select(e => ((double)e.Second, e.P99Millis)));
        WriteSeriesChart(Path.Combine(directory, ChartFiles[3]), $"Completed requests per second (rolling {RollingSeconds} s mean); dashed: offered", "requests / s",
            p => p.RatesPerSecond(RollingSeconds).Select(r => ((double)r.Second, r.Completed)),
            p => p.RatesPerSecond(RollingSeconds).Select(r => ((double)r.Second, r.Offered)));

        var html = new StringBuilder();
        html.Append(CultureInfo.InvariantCulture, $$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Redis max-clients incident replay</title>
            <style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px}td.n{text-align:right}.pass{color:#2ca02c}.fail{color:#d62728}</style>
            </head><body>
            <h1>Redis max-clients incident replay</h1>
            <p>maxclients {{scenario.MaxClients}} (standing for 1000); {{Scenario.InstancesPerService}} instances each of order-service, cart-service and notification-worker.
            The same open-loop schedule in every phase: {{scenario.OrderRate:0}} requests/s arrive at each order-service instance, {{scenario.CartRate:0}}/s at each cart-service instance,
            {{scenario.NotifyRate:0}} notifications/s are pushed, each ×{{Scenario.SpikeFactor}} during the spike ({{Seconds(scenario.SpikeStart)}} to {{Seconds(scenario.SpikeEnd)}} of each {{Seconds(scenario.Duration)}} phase),
            whether or not earlier requests have finished; notification-worker runs {{scenario.SteadyWorkers}} consumer(s) per instance, {{scenario.SpikeWorkers}} during the spike.</p>
            <p class="{{(Passed ? "pass" : "fail")}}"><b>{{E(Verdict)}}</b></p>
            <h2>Run</h2><table>
            """);
        foreach (var (name, value) in Metadata())
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(name)}</td><td>{E(value)}</td></tr>");
        }

        html.Append("</table>");
        for (var i = 0; i < _phases.Length; i++)
        {
            html.Append(CultureInfo.InvariantCulture, $"<h2>Phase {E(_phases[i].Title)}</h2><ul>");
            foreach (var label in i < labels.Count ? labels[i] : [])
            {
                html.Append(CultureInfo.InvariantCulture, $"<li>{E(label)}</li>");
            }

            html.Append("</ul>");
        }

        html.Append("<h2>Side by side</h2><table><tr><th>metric</th>");
        foreach (var phase in _phases)
        {
            html.Append("<th>").Append(E(phase.Title)).Append("</th>");
        }

        html.Append("</tr>");
        foreach (var (metric, values) in Rows())
        {
            html.Append("<tr><td>").Append(E(metric)).Append("</td>");
            foreach (var value in values)
            {
                html.Append("<td class=\"n\">").Append(E(value)).Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</table><h2>What the pools reported (phase C)</h2>");
        var signals = pooled.Signals
            .Concat(pooled.RejectionsPerSecond().Select(r => new PoolSignal(r.Second, $"{r.Rejected} requests rejected by a pool's admission queue (RedisPoolExhaustedException) in this second")))
            .OrderBy(s => s.Seconds)
            .ToList();
        if (signals.Count == 0)
        {
            html.Append("<p>Nothing: no breaker transition, no server utilization level change (the notify pool's monitor polls INFO), no admission rejection. An operator watching the pools' events and metrics saw a quiet system.</p>");
        }
        else
        {
            html.Append("<table><tr><th>s</th><th>signal</th></tr>");
            foreach (var signal in signals)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><td class=\"n\">{signal.Seconds:0.0}</td><td>{E(signal.Text)}</td></tr>");
            }

            html.Append("</table>");
        }

        html.Append("<h2>Charts</h2>");
        foreach (var chart in ChartFiles)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p><img src=\"{chart}\" alt=\"{chart}\" width=\"900\"></p>");
        }

        html.Append(CultureInfo.InvariantCulture, $"<p>Server figures come from INFO clients/stats sampled every 250 ms over one admin connection (counted in connected_clients); in phase C the dotted line is the sockets the pools count (GetStatistics().Sockets, summed). Every arrival is offered once and ends as completed (answered within the 2 s request budget) or failed (an error; no answer within the budget: its caller gave up, as an HTTP client would; or shed because its instance already had {Scenario.MaxConcurrentPerInstance} requests running). Latency is of completed requests only. notification-worker BLPOP errors are not requests and are counted apart. Rates and p99 are drawn over rolling {RollingSeconds} s windows. Max-clients errors are RedisConnectionExceptions while the server's rejected_connections rises (StackExchange.Redis never shows the server's text) and RedisPoolCircuitOpenException.</p></body></html>");
        var path = Path.Combine(directory, HtmlFile);
        File.WriteAllText(path, html.ToString());
        return path;
    }

    /// <summary>Date, commit, versions, machine and options: what a reader needs to reproduce or discount the run.</summary>
    public IReadOnlyList<(string Name, string Value)> Metadata() =>
    [
        ("finished (UTC)", _finished.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)),
        ("commit", GitCommit()),
        ("versions", $"RedisPoolKit {Version(typeof(RedisPoolKit.RedisPool).Assembly)}, StackExchange.Redis {Version(typeof(StackExchange.Redis.ConnectionMultiplexer).Assembly)}, redis-server {redisVersion}, {RuntimeInformation.FrameworkDescription}"),
        ("machine", $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, load average {LoadAverage()} at the end"),
        ("build", typeof(Report).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "?"),
        ("options", $"--maxclients {options.MaxClients} --duration {options.PhaseDuration.TotalSeconds:0} --scale {options.Scale.ToString(CultureInfo.InvariantCulture)}{(options.Quick ? " --quick" : string.Empty)}{(options.Redis is null ? string.Empty : $" --redis {options.Redis}")}"),
    ];

    private void WriteConnectedClientsChart(string path)
    {
        var plot = NewPlot("connected_clients (server INFO, every 250 ms)", "connected_clients");
        for (var i = 0; i < _phases.Length; i++)
        {
            AddLine(plot, _phases[i].Samples.Select(s => (s.Seconds, (double)s.ConnectedClients)), _phases[i].Title, PhaseColors[i]);
        }

        var poolSockets = AddLine(plot, pooled.Samples.Where(s => s.PoolSockets is not null).Select(s => (s.Seconds, (double)s.PoolSockets!.Value)), "C: sockets the pools count", PhaseColors[2]);
        if (poolSockets is not null)
        {
            poolSockets.LinePattern = LinePattern.Dotted;
        }

        foreach (var signal in pooled.Signals)
        {
            var marker = plot.Add.VerticalLine(signal.Seconds, 1, PhaseColors[2].WithAlpha(0.5), LinePattern.Dashed);
            marker.LegendText = string.Empty;
        }

        var limit = plot.Add.HorizontalLine(scenario.MaxClients, 2, Colors.Black, LinePattern.Dashed);
        limit.LegendText = $"maxclients {scenario.MaxClients}";
        AddSpike(plot);
        plot.Axes.SetLimitsX(0, LastSecond);
        plot.Axes.SetLimitsY(0, scenario.MaxClients * 1.15);
        plot.SavePng(path, 900, 420);
    }

    private void WriteSeriesChart(string path, string title, string yLabel, Func<PhaseRecorder, IEnumerable<(double, double)>> points, Func<PhaseRecorder, IEnumerable<(double, double)>>? dashed = null)
    {
        var plot = NewPlot(title, yLabel);
        for (var i = 0; i < _phases.Length; i++)
        {
            AddLine(plot, points(_phases[i]), _phases[i].Title, PhaseColors[i]);
        }

        if (dashed is not null)
        {
            var offered = AddLine(plot, dashed(pooled), "offered (the same in every phase)", Colors.Gray);
            if (offered is not null)
            {
                offered.LinePattern = LinePattern.Dashed;
            }
        }

        AddSpike(plot);
        plot.Axes.AutoScaleY();
        plot.Axes.SetLimitsX(0, LastSecond);
        plot.Axes.SetLimitsY(0, Math.Max(1, plot.Axes.GetLimits().Top));
        plot.SavePng(path, 900, 420);
    }

    private double LastSecond => Math.Ceiling(_phases.Max(p => p.WallTime.TotalSeconds)) + 1;

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

    private static ScottPlot.Plottables.Scatter? AddLine(Plot plot, IEnumerable<(double X, double Y)> points, string label, Color color)
    {
        var list = points.ToList();
        if (list.Count == 0)
        {
            return null;
        }

        var line = plot.Add.ScatterLine(list.Select(p => p.X).ToArray(), list.Select(p => p.Y).ToArray(), color);
        line.LineWidth = 2;
        line.LegendText = label;
        return line;
    }

    private static string GitCommit()
    {
        try
        {
            var start = new ProcessStartInfo("git", "rev-parse --short HEAD") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var git = Process.Start(start);
            if (git is null)
            {
                return "unknown";
            }

            var commit = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit(5000);
            var dirty = new ProcessStartInfo("git", "status --porcelain --untracked-files=no") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var status = Process.Start(dirty);
            var changed = status?.StandardOutput.ReadToEnd().Trim().Length > 0;
            status?.WaitForExit(5000);
            return git.ExitCode == 0 && commit.Length > 0 ? commit + (changed ? " (with uncommitted changes)" : string.Empty) : "unknown (not a git checkout)";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown (git not found)";
        }
    }

    private static string Version(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? assembly.GetName().Version?.ToString() ?? "?";

    private static string LoadAverage()
    {
        try
        {
            return string.Join(" / ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.0 's'", CultureInfo.InvariantCulture);

    private static string Millis(PhaseRecorder phase, double percentile) =>
        phase.Latency.TotalCount == 0
            ? "-"
            : (phase.Latency.GetValueAtPercentile(percentile) / 1000.0).ToString("0.0 'ms'", CultureInfo.InvariantCulture);
}
