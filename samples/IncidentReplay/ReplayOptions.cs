using System.Globalization;

namespace IncidentReplay;

/// <summary>Command-line options. A hand parser keeps the sample free of a preview command-line package.</summary>
internal sealed class ReplayOptions
{
    public int MaxClients { get; private set; } = 64;

    public TimeSpan PhaseDuration { get; private set; } = TimeSpan.FromSeconds(30);

    public double Scale { get; private set; } = 1.0;

    public bool Quick { get; private set; }

    public string OutDirectory { get; private set; } = "incident-report";

    public string? Redis { get; private set; }

    public bool AllowConfig { get; private set; }

    public bool ShowHelp { get; private set; }

    /// <summary>Runs the autoscaling scenario (fleet budget off, then on) instead of phases A-C.</summary>
    public bool Autoscale { get; private set; }

    /// <summary>The autoscaling scenario's phase length: --duration when given, 10 s otherwise.</summary>
    public TimeSpan AutoscaleDuration { get; private set; } = TimeSpan.FromSeconds(10);

    public TimeSpan DrainTimeout => Quick ? TimeSpan.FromSeconds(3) : TimeSpan.FromSeconds(5);

    public const string Help = """
        IncidentReplay: replays the Redis max-clients incident three times against one server, with the same
        open-loop arrivals each time: first with the naive StackExchange.Redis patterns behind it (phase A),
        then with idiomatic StackExchange.Redis (phase B: one shared multiplexer per instance, a dedicated one
        per BLPOP consumer), then through RedisPoolKit pools whose socket budgets fit under maxclients
        (phase C). Every phase measures the server (INFO clients/stats every 250 ms) and the clients, prints a
        side-by-side table and writes an HTML report with the run's metadata and charts.

        Usage: dotnet run --project samples/IncidentReplay -- [options]

        Options:
          --maxclients N     the server's maxclients for the replay (default 64, standing for production's 1000).
                             At least 24: below that the pools' smallest budgets no longer fit under it.
                             Applied to the server this tool starts, or with --allow-config to a --redis server.
          --duration SEC     length of each phase in seconds: steady load, a 10x spike, recovery (default 30).
          --scale F          multiplies the arrival rates and the consumers per instance, steady and spike (default 1.0).
          --quick            reduced scale for CI: 12 s phases, and a drain that gives up after 3 s without progress
                             (5 s otherwise); the whole run takes about a minute.
          --out DIR          where incident-report.html and its PNG charts go (default ./incident-report).
          --redis HOST:PORT  use an existing Redis instead of starting a redis-server. Its maxclients is left
                             as it is unless --allow-config is given; the keys profile:*, cart:* and
                             queue:notifications are written and deleted.
          --allow-config     with --redis: CONFIG SET maxclients to --maxclients for the run and restore it after.
          --autoscale        instead of phases A-C, the autoscaling scenario: during a spike the autoscaler doubles
                             notification-worker from 2 to 4 RedisPoolKit instances (MaxConnections 6 each), run
                             with the fleet budget off, then on (Fleet.MaxConnections 16). Passes when, with it,
                             peak connected_clients stays within 16 plus every other client's sockets and, without
                             it, does not. Phases of 10 s (or --duration); about 30 s in all.
          -h, --help         show this help.

        Exit code (--autoscale: 0 when the fleet budget held and the run without it did not, and every
        notification was consumed): 0 when phase C had no max-clients error, stayed under maxclients (no rejected connection) and
        lost no queue item (every acknowledged notification consumed, none left after the drain);
        1 when it did not (or could not run); 2 for bad options or no server.
        """;

    public static ReplayOptions Parse(IReadOnlyList<string> args)
    {
        var options = new ReplayOptions();
        TimeSpan? duration = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "-h" or "--help" or "-?":
                    options.ShowHelp = true;
                    break;
                case "--maxclients":
                    options.MaxClients = ParseInt(arg, Next(args, ref i), min: 24);
                    break;
                case "--duration":
                    duration = TimeSpan.FromSeconds(ParseInt(arg, Next(args, ref i), min: 6));
                    break;
                case "--scale":
                    options.Scale = ParseDouble(arg, Next(args, ref i));
                    break;
                case "--quick":
                    options.Quick = true;
                    break;
                case "--out":
                    options.OutDirectory = Next(args, ref i);
                    break;
                case "--redis":
                    options.Redis = Next(args, ref i);
                    break;
                case "--allow-config":
                    options.AllowConfig = true;
                    break;
                case "--autoscale":
                    options.Autoscale = true;
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{arg}'. Run with --help to see the options.");
            }
        }

        options.PhaseDuration = duration ?? (options.Quick ? TimeSpan.FromSeconds(12) : TimeSpan.FromSeconds(30));
        options.AutoscaleDuration = duration ?? TimeSpan.FromSeconds(10);
        if (options.AllowConfig && options.Redis is null)
        {
            throw new ArgumentException("--allow-config only applies with --redis: the server this tool starts is configured already.");
        }

        return options;
    }

    private static string Next(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"Option '{args[i]}' needs a value. Run with --help to see the options.");
        }

        return args[++i];
    }

    private static int ParseInt(string option, string value, int min)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) || parsed < min)
        {
            throw new ArgumentException($"Option '{option}' needs a whole number of at least {min}, not '{value}'.");
        }

        return parsed;
    }

    private static double ParseDouble(string option, string value)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) || parsed <= 0 || parsed > 20)
        {
            throw new ArgumentException($"Option '{option}' needs a number above 0 and at most 20, not '{value}'.");
        }

        return parsed;
    }
}
