using System.Globalization;
using System.Net;
using RedisPoolKit.LoadTests.Clients;

namespace RedisPoolKit.LoadTests;

/// <summary>The harness's command line. Defaults are the full run whose tables are committed in benchmarks/results.</summary>
internal sealed class LoadOptions
{
    public const int FloorCallers = 64;

    private static readonly string[] QuickClients = [LoadClientKind.RawId, LoadClientKind.RedisPoolKitId];

    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(5);

    /// <summary>True when --duration was given: the scenarios have their own defaults otherwise.</summary>
    public bool DurationGiven { get; private set; }

    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(1);

    public int Rounds { get; private set; } = 3;

    public IReadOnlyList<int> Callers { get; private set; } = [8, 64, 256];

    public IReadOnlyList<int> Sizes { get; private set; } = [100, 1024];

    public IReadOnlyList<string> Operations { get; private set; } = ["GET", "SET"];

    public IReadOnlyList<string> Clients { get; private set; } = ["raw", "redispoolkit", "freeredis", "csrediscore"];

    /// <summary>With --quick: the file of limits to gate on (benchmarks/gate.txt in CI).</summary>
    public string? GateFile { get; private set; }

    public string? OutputDirectory { get; private set; }

    public string? Redis { get; private set; }

    public bool Quick { get; private set; }

    public bool Ceiling { get; private set; } = true;

    /// <summary>With --quick: pair raw against a second raw client, to see how far from 1 the median lands on noise alone.</summary>
    public bool SelfPaired { get; private set; }

    /// <summary>Null for the client matrix (the default); <see cref="HeadOfLine.Name"/> for the head-of-line case.</summary>
    public string? Scenario { get; private set; }

    public const string Usage = """
        RedisPoolKit.LoadTests: the same GET/SET workload against raw StackExchange.Redis, RedisPoolKit, FreeRedis and CSRedisCore.

          --duration SECONDS   measured time per client per round (default 5; --quick: 2 per window)
          --warmup SECONDS     unmeasured time before each measurement (default 1; --quick: 2, once per client)
          --rounds N           alternating rounds; the client order rotates each round (default 3; --quick: 15 pairs)
          --callers LIST       concurrent async callers, e.g. 8,64,256 (default)
          --sizes LIST         value sizes in bytes, e.g. 100,1024 (default; 1KB is accepted)
          --ops LIST           GET,SET (default)
          --clients LIST       raw,redispoolkit,freeredis,csrediscore (default: all)
          --quick              the CI configuration: raw and RedisPoolKit both connected and warmed up, then
                               15 pairs of 2 s windows in ABBA order; 64 callers, 100 B, GET
          --gate FILE          with --quick: exit 1 when a median over the pairs at 64 callers breaks a limit in
                               FILE (benchmarks/gate.txt): extra bytes allocated per command over raw, CPU time
                               per command over raw, and a collapse floor for ops/s over raw
          --aa                 with --quick: pair raw against a second raw client (an A/A run); how far its median
                               lands from 1.00 is the gate's noise on this machine (socket counts are not split)
          --out DIRECTORY      write the markdown tables to DIRECTORY/load-results.md
          --redis HOST:PORT    use this (loopback) server instead of starting a redis-server
          --no-ceiling         skip the redis-benchmark ceiling
          --scenario head-of-line
                               instead of the matrix: 64 callers GET 100 B beside one caller GETting 1 MB,
                               raw vs RedisPoolKit (MaxMultiplexers = 2); honours --duration, --warmup,
                               --rounds, --out (writes DIRECTORY/head-of-line.md), --redis
          --scenario overload  open-loop SINTERCARD (server-bound) at 0.5x the measured capacity for 3 s, 2x for --duration
                               (default 10 s), 0.5x for 10 s: raw StackExchange.Redis, then RedisPoolKit
                               (defaults); honours --duration, --out (DIRECTORY/overload.md), --redis
          --scenario soak      mixed commands and lease consumers through RedisPoolKit for --duration
                               (default 60 s) while a pool socket is killed every few seconds and the server
                               restarts once; exit 1 on a leaked socket, permit or lease slot, an untyped
                               error, or memory/threads past their bounds; honours --duration, --out
                               (DIRECTORY/soak.md); always starts its own redis-server
        """;

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        if (args.Contains("--quick"))
        {
            options.Quick = true;
            options.Rounds = 15;
            options.Duration = TimeSpan.FromSeconds(2);
            options.Warmup = TimeSpan.FromSeconds(2);
            options.Callers = [FloorCallers];
            options.Sizes = [100];
            options.Operations = ["GET"];
            options.Clients = QuickClients;
        }

        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            switch (name)
            {
                case "--quick":
                    break;
                case "--duration":
                    options.Duration = Seconds(name, Value());
                    options.DurationGiven = true;
                    break;
                case "--warmup":
                    options.Warmup = Seconds(name, Value());
                    break;
                case "--rounds":
                    options.Rounds = Positive(name, Value());
                    break;
                case "--callers":
                    options.Callers = [.. List(Value()).Select(v => Positive(name, v))];
                    break;
                case "--sizes":
                    options.Sizes = [.. List(Value()).Select(v => Size(name, v))];
                    break;
                case "--ops":
                    options.Operations = [.. List(Value()).Select(v => Operation(name, v))];
                    break;
                case "--clients":
                    options.Clients = [.. List(Value()).Select(v => Client(name, v))];
                    break;
                case "--gate":
                    options.GateFile = Value();
                    break;
                case "--out":
                    options.OutputDirectory = Value();
                    break;
                case "--redis":
                    options.Redis = Loopback(name, Value());
                    break;
                case "--aa":
                    options.SelfPaired = true;
                    break;
                case "--no-ceiling":
                    options.Ceiling = false;
                    break;
                case "--scenario":
                    var scenario = Value().ToLowerInvariant();
                    options.Scenario = scenario is HeadOfLine.Name or Overload.Name or Soak.Name
                        ? scenario
                        : throw new ArgumentException($"{name}: unknown scenario {scenario}; use {HeadOfLine.Name}, {Overload.Name} or {Soak.Name} (or leave it out for the client matrix).");
                    break;
                default:
                    throw new ArgumentException($"Unknown option {name}.");
            }
        }

        if (!options.DurationGiven && options.Scenario is Overload.Name or Soak.Name)
        {
            options.Duration = options.Scenario == Overload.Name ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(60);
        }

        if (options.Quick && !options.Clients.Order().SequenceEqual(QuickClients.Order()))
        {
            throw new ArgumentException($"--quick measures {string.Join(" against ", QuickClients)} in pairs; leave out --clients, or drop --quick for the full matrix.");
        }

        if (options.GateFile is not null && !options.Quick)
        {
            throw new ArgumentException("--gate gates the paired run of --quick; add --quick.");
        }

        if (options.SelfPaired && (!options.Quick || options.GateFile is not null))
        {
            throw new ArgumentException("--aa is a noise check of the --quick run: add --quick, and leave out --gate (raw against raw gates nothing).");
        }

        return options;
    }

    public string Describe() =>
        Quick
            ? string.Create(CultureInfo.InvariantCulture, $"{Rounds} ABBA-ordered pairs of {Duration.TotalSeconds:0.#} s windows (raw, RedisPoolKit, RedisPoolKit, raw, ...) after {Warmup.TotalSeconds:0.#} s of warm-up per client; callers {string.Join(", ", Callers)}; sizes {string.Join(", ", Sizes)} B; {string.Join("/", Operations)}")
            : string.Create(CultureInfo.InvariantCulture, $"{Rounds} rounds × {Duration.TotalSeconds:0.#} s measured (+{Warmup.TotalSeconds:0.#} s warm-up) per client; callers {string.Join(", ", Callers)}; sizes {string.Join(", ", Sizes)} B; {string.Join("/", Operations)}");

    private static string[] List(string value) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static TimeSpan Seconds(string name, string value)
    {
        var seconds = double.Parse(value.TrimEnd('s'), NumberStyles.Float, CultureInfo.InvariantCulture);
        return seconds > 0 ? TimeSpan.FromSeconds(seconds) : throw new ArgumentException($"{name} must be greater than zero (was {value}).");
    }

    private static int Positive(string name, string value)
    {
        var number = int.Parse(value, CultureInfo.InvariantCulture);
        return number > 0 ? number : throw new ArgumentException($"{name} must be greater than zero (was {value}).");
    }

    private static int Size(string name, string value)
    {
        var upper = value.ToUpperInvariant();
        var multiplier = upper.EndsWith("KB", StringComparison.Ordinal) ? 1024 : 1;
        var digits = upper.Replace("KB", string.Empty, StringComparison.Ordinal).TrimEnd('B');
        return Positive(name, digits) * multiplier;
    }

    private static string Operation(string name, string value)
    {
        var upper = value.ToUpperInvariant();
        return upper is "GET" or "SET" ? upper : throw new ArgumentException($"{name}: unknown operation {value}; use GET and/or SET.");
    }

    private static string Client(string name, string value)
    {
        var id = value.ToLowerInvariant();
        return LoadClientKind.All.Any(k => k.Id == id)
            ? id
            : throw new ArgumentException($"{name}: unknown client {value}; use {string.Join(", ", LoadClientKind.All.Select(k => k.Id))}.");
    }

    private static string Loopback(string name, string value)
    {
        var colon = value.LastIndexOf(':');
        var host = colon > 0 ? value[..colon] : value;
        var loopback = host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
        return loopback ? value : throw new ArgumentException($"{name} must be a loopback address (127.0.0.1, localhost, [::1]); was {value}.");
    }
}
