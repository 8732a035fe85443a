using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Monitoring;

/// <summary>
/// Every metric name the documentation uses (instrument names in docs/Metrics.md, Prometheus names in alert rules and
/// queries anywhere in docs/ and the README) exists in what the OpenTelemetry Prometheus exporter writes for the pool's
/// meter, and every instrument the exporter writes is documented. An alert on a name the exporter never writes never fires.
/// </summary>
public sealed partial class DocumentedMetricNamesTests
{
    private const string Pool = "orders";

    [Fact]
    public async Task Every_metric_name_in_the_docs_is_one_the_Prometheus_exporter_writes()
    {
        var export = await ExportEveryInstrumentAsync();
        var exported = Names(export);

        var missing = DocumentedPrometheusNames()
            .Where(use => !exported.Series.Contains(use.Name) && !exported.Labels.Contains(use.Name))
            .Select(use => $"{use.Name} ({use.File})")
            .ToList();

        Assert.True(missing.Count == 0, $"Documented, but not in the Prometheus export: {string.Join(", ", missing)}.\nExported: {string.Join(", ", exported.Series.Order())}");
    }

    [Fact]
    public async Task Every_instrument_in_the_metrics_table_is_exported_and_every_exported_instrument_is_in_the_table()
    {
        var export = await ExportEveryInstrumentAsync();
        var families = Names(export).Families.Where(IsOurs).ToList();
        var documented = DocumentedInstruments().Select(name => name.Replace('.', '_')).ToList();

        Assert.NotEmpty(documented);
        Assert.All(documented, name => Assert.True(
            families.Any(family => IsFamilyOf(family, name)),
            $"docs/Metrics.md lists {name}, but the exporter wrote no family for it: {string.Join(", ", families)}"));
        Assert.All(families, family => Assert.True(
            documented.Any(name => IsFamilyOf(family, name)),
            $"The exporter writes {family}, but docs/Metrics.md's instrument tables do not list it."));
    }

    // The exporter appends the unit (_seconds, _ratio) and, for counters, _total to the instrument's name.
    private static bool IsFamilyOf(string family, string instrument) =>
        family == instrument || (family.StartsWith(instrument + "_", StringComparison.Ordinal)
            && family[(instrument.Length + 1)..] is "total" or "seconds" or "ratio" or "seconds_total" or "ratio_total");

    private static bool IsOurs(string name) =>
        name.StartsWith("redispoolkit_", StringComparison.Ordinal) || name.StartsWith("db_client_connection_", StringComparison.Ordinal);

    /// <summary>Records one measurement on every instrument of the pool's meter and scrapes it through the exporter.</summary>
    private static async Task<string> ExportEveryInstrumentAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(RedisPoolInstrumentNames.MeterName).AddPrometheusExporter());
        await using var app = builder.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        await app.StartAsync();

        var statistics = new RedisPoolStatistics
        {
            PoolName = Pool,
            MaxConnections = 8,
            Sockets = 3,
            MultiplexerSockets = 1,
            LeaseSockets = 2,
            Multiplexers = 1,
            InFlight = 4,
            Queued = 1,
            InFlightLimit = 64,
            InFlightLimitBaseline = TimeSpan.FromMilliseconds(0.2),
            InFlightLimitIncreases = 3,
            InFlightLimitDecreases = 1,
            LeasesIdle = 1,
            LeasesUsed = 1,
            LeaseWaiters = 1,
            ReconnectsSuppressed = 2,
            CircuitState = RedisPoolCircuitState.Closed,
            LastServerUtilization = new RedisServerUtilization(800, 1000, 3, 5, DateTimeOffset.UnixEpoch) { EndPoint = "127.0.0.1:6379" },
            EffectiveMaxConnections = 4,
            FleetInstances = 10,
            FleetMaxConnections = 40,
            FleetShareChanges = 1,
        };
        using var metrics = new RedisPoolMetrics(
            Pool, app.Services.GetRequiredService<IMeterFactory>(), () => statistics, new RedisPoolOptions { Name = Pool, Leases = { MinIdle = 1 } });
        metrics.RecordCreateTime(TimeSpan.FromMilliseconds(2), SocketRole.Multiplexer);
        metrics.RecordLeaseWait(TimeSpan.FromMilliseconds(3));
        metrics.RecordLeaseUse(TimeSpan.FromMilliseconds(4));
        metrics.RecordAdmissionWait(TimeSpan.FromMilliseconds(5));
        metrics.RecordTimeout(RedisPoolExhaustedReason.LeaseTimeout);
        metrics.RecordRejected(RedisPoolExhaustedReason.LeaseTimeout);
        metrics.RecordRejectedCircuitOpen();
        metrics.RecordCommandFailed(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, "ERR failed"));
        metrics.RecordLeakSuspected();
        metrics.RecordUnblockUnavailable();
        metrics.RecordCircuitTransition(RedisPoolCircuitState.Closed, RedisPoolCircuitState.Open);

        using var http = app.GetTestClient();
        var export = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        await app.StopAsync();
        return export;
    }

    private sealed record ExportedNames(HashSet<string> Series, HashSet<string> Labels, HashSet<string> Families);

    private static ExportedNames Names(string export)
    {
        var series = new HashSet<string>(StringComparer.Ordinal);
        var labels = new HashSet<string>(StringComparer.Ordinal);
        var families = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in export.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (TypeLine().Match(line) is { Success: true } type)
            {
                families.Add(type.Groups[1].Value);
            }
            else if (!line.StartsWith('#') && SeriesLine().Match(line) is { Success: true } sample)
            {
                series.Add(sample.Groups[1].Value);
                foreach (Match label in LabelName().Matches(sample.Groups[2].Value))
                {
                    labels.Add(label.Groups[1].Value);
                }
            }
        }

        Assert.NotEmpty(series);
        return new ExportedNames(series, labels, families);
    }

    private sealed record Use(string Name, string File);

    /// <summary>Prometheus-style names (metrics and labels) in docs/*.md and README.md.</summary>
    private static List<Use> DocumentedPrometheusNames()
    {
        var root = RepositoryRoot();
        var files = Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Append(Path.Combine(root, "README.md"));
        var uses = files
            .SelectMany(file => PrometheusName().Matches(File.ReadAllText(file))
                .Select(match => new Use(match.Value, Path.GetRelativePath(root, file))))
            .DistinctBy(use => (use.Name, use.File))
            .ToList();
        Assert.Contains(uses, use => use.Name.StartsWith("redispoolkit_server_utilization", StringComparison.Ordinal));
        return uses;
    }

    /// <summary>The first column of the instrument tables under docs/Metrics.md's "## Instruments".</summary>
    private static List<string> DocumentedInstruments()
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "Metrics.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith("## Instruments", StringComparison.Ordinal));
        Assert.True(start >= 0, "docs/Metrics.md has no '## Instruments' section.");
        return lines.Skip(start + 1)
            .TakeWhile(line => !line.StartsWith("## ", StringComparison.Ordinal))
            .Select(line => InstrumentRow().Match(line))
            .Where(match => match.Success)
            .Select(match => match.Groups[1].Value)
            .ToList();
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "RedisPoolKit.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No RedisPoolKit.sln above {AppContext.BaseDirectory}: the test reads the repository's docs.");
    }

    [GeneratedRegex(@"\b(?:redispoolkit|db_client_connection)_[a-z0-9_]+\b")]
    private static partial Regex PrometheusName();

    [GeneratedRegex(@"^\|\s*`((?:redispoolkit|db\.client\.connection)\.[a-z0-9_.]+)`\s*\|")]
    private static partial Regex InstrumentRow();

    [GeneratedRegex(@"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s")]
    private static partial Regex SeriesLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""")]
    private static partial Regex LabelName();
}
