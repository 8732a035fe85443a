using RedisPoolKit.LoadTests;
using RedisPoolKit.LoadTests.Clients;
using RedisPoolKit.Testing;
using StackExchange.Redis;

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(LoadOptions.Usage);
    return 2;
}

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(LoadOptions.Usage);
    return 0;
}

GateLimits? limits = null;
if (options.GateFile is not null)
{
    try
    {
        limits = GateLimits.Parse(await File.ReadAllTextAsync(options.GateFile));
    }
    catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
    {
        Console.Error.WriteLine($"--gate {options.GateFile}: {e.Message}");
        return 2;
    }
}

var log = Console.Out;
if (options.Scenario == Soak.Name)
{
    return await Soak.RunAsync(options, $"dotnet run -c Release --project benchmarks/RedisPoolKit.LoadTests -- {string.Join(' ', args)}", log);
}

var loadAtStart = Report.LoadAverage();
RedisServer? server = null;
string endPoint;
if (options.Redis is null)
{
    server = await RedisServer.StartAsync(new RedisServerOptions { StartTimeout = TimeSpan.FromSeconds(30) });
    endPoint = server.ConnectionString;
    log.WriteLine($"Started redis-server on {endPoint}.");
}
else
{
    endPoint = options.Redis;
}

try
{
    await using var admin = await ConnectionMultiplexer.ConnectAsync($"{endPoint},allowAdmin=true,name=loadtest-admin");
    var adminServer = admin.GetServer(admin.GetEndPoints()[0]);
    var info = await adminServer.InfoAsync("server");
    var redisVersion = info.SelectMany(g => g).FirstOrDefault(p => p.Key == "redis_version").Value ?? adminServer.Version.ToString();
    var command = $"dotnet run -c Release --project benchmarks/RedisPoolKit.LoadTests -- {string.Join(' ', args)}";
    if (options.Scenario == HeadOfLine.Name)
    {
        log.WriteLine($"Head-of-line: {HeadOfLine.SmallCallers} callers GET {HeadOfLine.SmallSize} B beside one caller GETting 1 MB; {options.Rounds} rounds × {options.Duration.TotalSeconds:0.#} s (+{options.Warmup.TotalSeconds:0.#} s warm-up).");
        var holResults = await HeadOfLine.RunAsync(options, endPoint, adminServer, admin.GetDatabase(), log);
        var holMarkdown = HeadOfLine.Markdown(options, holResults, command, Report.Machine(redisVersion, loadAtStart, Report.LoadAverage()));
        await PublishAsync("head-of-line.md", holMarkdown);
        return 0;
    }

    if (options.Scenario == Overload.Name)
    {
        log.WriteLine($"Overload: open-loop; raw StackExchange.Redis, then RedisPoolKit.");
        var overload = await Overload.RunAsync(options, endPoint, adminServer, admin.GetDatabase(), log);
        var overloadMarkdown = Overload.Markdown(overload, command, Report.Machine(redisVersion, loadAtStart, Report.LoadAverage()), options.Duration);
        await PublishAsync("overload.md", overloadMarkdown);
        return 0;
    }

    var kinds = LoadClientKind.All.Where(k => options.Clients.Contains(k.Id)).ToList();

    log.WriteLine($"Workload: {options.Describe()}.");
    log.WriteLine($"Clients: {string.Join(", ", kinds.Select(k => k.Display))}.");
    await LoadRunner.PreloadAsync(admin.GetDatabase(), options.Sizes);

    IReadOnlyList<CeilingResult> ceiling = [];
    if (options.Ceiling)
    {
        log.WriteLine("Server ceiling (redis-benchmark):");
        var colon = endPoint.LastIndexOf(':');
        ceiling = await ServerCeiling.MeasureAsync(options, endPoint[..colon].Trim('[', ']'), int.Parse(endPoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), log);
    }

    log.WriteLine("Clients:");
    var runner = new LoadRunner(options, endPoint, adminServer, log);
    var raw = kinds.Single(k => k.Id == LoadClientKind.RawId);
    IReadOnlyList<PairedRun> paired = options.Quick
        ? await runner.RunPairedAsync(raw, options.SelfPaired ? raw with { Display = $"{raw.Display} again" } : kinds.Single(k => k.Id == LoadClientKind.RedisPoolKitId))
        : [];
    IReadOnlyList<ClientResult> results = options.Quick
        ? [.. paired.SelectMany(r => new[] { r.Baseline, r.Candidate })]
        : await runner.RunAsync(kinds);

    var markdown = new System.Text.StringBuilder()
        .AppendLine("# Load harness results")
        .AppendLine()
        .AppendLine($"Command: `{command}`")
        .AppendLine()
        .AppendLine("## Machine")
        .AppendLine()
        .AppendLine(Report.Machine(redisVersion, loadAtStart, Report.LoadAverage()))
        .AppendLine("## Method")
        .AppendLine()
        .AppendLine(Report.Method(options, kinds))
        .AppendLine("## Server ceiling")
        .AppendLine()
        .AppendLine(Report.Ceiling(ceiling))
        .AppendLine("## Ratios to raw StackExchange.Redis")
        .AppendLine()
        .AppendLine(options.Quick ? Report.PairedRatios(paired) : Report.Ratios(results, kinds))
        .AppendLine("## All figures")
        .AppendLine()
        .Append(Report.Results(results))
        .ToString();

    await PublishAsync("load-results.md", markdown);

    if (options.Redis is not null)
    {
        await foreach (var key in adminServer.KeysAsync(pattern: "loadtest:*"))
        {
            await admin.GetDatabase().KeyDeleteAsync(key);
        }
    }

    return options.GateFile is { } gateFile ? Gate.Check(limits!, gateFile, paired, log) : 0;
}
finally
{
    if (server is not null)
    {
        await server.DisposeAsync();
    }
}

// Prints the report, and writes it under --out when one was given.
async Task PublishAsync(string fileName, string markdown)
{
    log.WriteLine();
    log.WriteLine(markdown);
    if (options.OutputDirectory is not null)
    {
        Directory.CreateDirectory(options.OutputDirectory);
        var path = Path.Combine(options.OutputDirectory, fileName);
        await File.WriteAllTextAsync(path, markdown);
        log.WriteLine($"Wrote {path}.");
    }
}
