using System.CommandLine;
using System.CommandLine.Parsing;
using RedisPoolKit.Cli.Commands;
using RedisPoolKit.Cli.Output;
using RedisPoolKit.Cli.Redis;

namespace RedisPoolKit.Cli;

/// <summary>
/// The <c>redispool</c> command line. Exit codes: 0 fine; 1 warnings (doctor) or a kill that failed; 2 critical
/// findings, a target that cannot be reached, or a command line that does not parse.
/// </summary>
internal sealed class CliApp(TextWriter output, TextWriter error, TimeProvider time, bool plainOutput)
{
    public const int Unusable = 2;

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var parse = BuildRoot().Parse(args);
        var code = await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
        // A command line that does not parse ran nothing: the same code as a server that cannot be reached, so a
        // script gating on "doctor exits 0 or 1" never mistakes a typo for warnings.
        return parse.Errors.Count > 0 ? Unusable : code;
    }

    internal RootCommand BuildRoot()
    {
        var root = new RootCommand(
            "redispool: who holds the connections to a Redis server, and what to do about it. Each command takes a "
            + "StackExchange.Redis configuration string (host:port[,password=...][,user=...][,ssl=true]); in a cluster every master is read.");
        root.Subcommands.Add(Inspect());
        root.Subcommands.Add(Watch());
        root.Subcommands.Add(KillIdle());
        root.Subcommands.Add(Doctor());
        root.Subcommands.Add(Budget());
        return root;
    }

    private static Argument<string> ConfigurationArgument()
    {
        var argument = new Argument<string>("configuration")
        {
            Description = "StackExchange.Redis configuration string, e.g. 127.0.0.1:6379 or redis-1:6379,redis-2:6379,user=ops,password=...,ssl=true",
        };
        // An option this command does not have would otherwise be taken for the configuration string.
        argument.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (value is not null && value.StartsWith('-'))
            {
                result.AddError($"'{value}' is not an option of this command (see --help), and a configuration string does not start with '-'.");
            }
        });
        return argument;
    }

    private static Option<bool> JsonOption() => new("--json") { Description = "Write JSON (snake_case) instead of tables." };

    private static Option<TimeSpan> DurationOption(string name, string description, TimeSpan? defaultValue, bool allowZero = false)
    {
        var option = new Option<TimeSpan>(name)
        {
            Description = description + " (500ms, 30s, 10m, 2h, 1d or hh:mm:ss)",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (!Duration.TryParse(text, out var value) || value < TimeSpan.Zero || (!allowZero && value == TimeSpan.Zero))
                {
                    result.AddError($"{name} '{text}' is not a {(allowZero ? "non-negative" : "positive")} duration: use 500ms, 30s, 10m, 2h, 1d or hh:mm:ss.");
                    return default;
                }

                return value;
            },
        };
        if (defaultValue is { } d)
        {
            option.DefaultValueFactory = _ => d;
        }

        return option;
    }

    private static Option<int> PositiveIntOption(string name, string description, int? defaultValue, int minimum = 1)
    {
        var option = new Option<int>(name) { Description = description };
        if (defaultValue is { } d)
        {
            option.DefaultValueFactory = _ => d;
        }
        else
        {
            option.Required = true;
        }

        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < minimum)
            {
                result.AddError($"{name} must be at least {minimum}.");
            }
        });
        return option;
    }

    private CommandContext Context() => new(CliConsole.Create(output, plainOutput), output, error, time);

    /// <summary>Runs a command; a target that cannot be reached ends it with a one-line message, not a stack trace.</summary>
    private async Task<int> Guard(Func<CommandContext, Task<int>> run)
    {
        try
        {
            return await run(Context());
        }
        catch (TargetException ex)
        {
            await error.WriteLineAsync("redispool: " + ex.Message);
            return Unusable;
        }
    }

    private Command Inspect()
    {
        var configuration = ConfigurationArgument();
        var json = JsonOption();
        var top = PositiveIntOption("--top", "How many top holders to list.", 5);
        var command = new Command("inspect", "connected_clients against maxclients, and every client grouped: RedisPoolKit sockets by service → instance → pool → role, unnamed ones by host and library, the top holders, blocked clients, and the fleet budget's registrations (redispoolkit:fleet:* keys, expiry by the server's TIME) next to each instance's sockets.")
        {
            configuration, json, top,
        };
        command.SetAction((parse, _) => Guard(c => InspectCommand.RunAsync(c, parse.GetValue(configuration)!, parse.GetValue(json), parse.GetValue(top))));
        return command;
    }

    private Command Watch()
    {
        var configuration = ConfigurationArgument();
        var json = JsonOption();
        var interval = DurationOption("--interval", "Time between samples", TimeSpan.FromSeconds(1));
        var duration = DurationOption("--duration", "Stop after this long (default: until Ctrl-C)", null);
        var top = PositiveIntOption("--top", "How many top services to show.", 3);
        var command = new Command("watch", "A live view: utilization bar, connected_clients over the last minutes, rejected connections per second and the top services. --json writes one line per sample.")
        {
            configuration, json, interval, duration, top,
        };
        command.SetAction((parse, cancellationToken) => Guard(c => WatchCommand.RunAsync(
            c,
            parse.GetValue(configuration)!,
            parse.GetValue(interval),
            parse.GetResult(duration) is { Implicit: false } ? parse.GetValue(duration) : null,
            parse.GetValue(json),
            parse.GetValue(top),
            cancellationToken)));
        return command;
    }

    private Command KillIdle()
    {
        var configuration = ConfigurationArgument();
        var json = JsonOption();
        var idle = DurationOption("--idle", "Close clients idle at least this long", null, allowZero: true);
        idle.Required = true;
        var service = new Option<string>("--service") { Description = "Only RedisPoolKit sockets of this service." };
        var instance = new Option<string>("--instance") { Description = "Only RedisPoolKit sockets of this instance." };
        var pool = new Option<string>("--pool") { Description = "Only RedisPoolKit sockets of this pool." };
        var role = new Option<string>("--role") { Description = "Only RedisPoolKit sockets of this role." };
        role.AcceptOnlyFromAmong([.. PoolClientName.Roles]);
        var unnamed = new Option<bool>("--unnamed") { Description = "Only clients without a name (cannot be combined with --service/--instance/--pool/--role)." };
        var includePubSub = new Option<bool>("--include-pubsub") { Description = "Also close pub/sub clients (they look idle while they wait for messages)." };
        var includeBlocked = new Option<bool>("--include-blocked") { Description = "Also close blocked clients (BLPOP, XREAD BLOCK...: idle while they wait)." };
        var max = PositiveIntOption("--max", "Close at most this many clients, longest idle first.", 20);
        var yes = new Option<bool>("--yes") { Description = "Really close them (CLIENT KILL ID). Without it nothing is closed." };
        var command = new Command("kill-idle", "Lists the clients idle at least --idle and, with --yes, closes them. Never this tool's own connection or replication links; pub/sub and blocked clients only when asked.")
        {
            configuration, json, idle, service, instance, pool, role, unnamed, includePubSub, includeBlocked, max, yes,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(unnamed) && (result.GetValue(service) ?? result.GetValue(instance) ?? result.GetValue(pool) ?? result.GetValue(role)) is not null)
            {
                result.AddError("--unnamed selects clients without a name; --service, --instance, --pool and --role select RedisPoolKit sockets by name. Use one or the other.");
            }
        });
        command.SetAction((parse, _) => Guard(c => KillIdleCommand.RunAsync(
            c,
            parse.GetValue(configuration)!,
            new IdleCriteria(
                parse.GetValue(idle),
                parse.GetValue(service),
                parse.GetValue(instance),
                parse.GetValue(pool),
                parse.GetValue(role),
                parse.GetValue(unnamed),
                parse.GetValue(includePubSub),
                parse.GetValue(includeBlocked),
                parse.GetValue(max)),
            parse.GetValue(yes),
            parse.GetValue(json))));
        return command;
    }

    private Command Doctor()
    {
        var configuration = ConfigurationArgument();
        var json = JsonOption();
        var sample = DurationOption("--sample", "Watch rejected_connections this long (0 to skip)", TimeSpan.FromSeconds(2), allowZero: true);
        var longIdle = DurationOption("--long-idle", "A client idle this long counts as long-idle", TimeSpan.FromMinutes(10));
        var command = new Command("doctor", "Checks the server for what leads to 'ERR max number of clients reached' and prints each finding with its fix. Exit code 0 (healthy), 1 (warnings), 2 (critical or unreachable).")
        {
            configuration, json, sample, longIdle,
        };
        command.SetAction((parse, cancellationToken) => Guard(c => DoctorCommand.RunAsync(
            c,
            parse.GetValue(configuration)!,
            parse.GetValue(sample),
            new DoctorThresholds(parse.GetValue(longIdle)),
            parse.GetValue(json),
            cancellationToken)));
        return command;
    }

    private Command Budget()
    {
        var json = JsonOption();
        var maxClients = PositiveIntOption("--maxclients", "The server's maxclients (per master in a cluster).", null);
        var instances = PositiveIntOption("--instances", "Service instances in steady state.", null);
        var pools = PositiveIntOption("--pools", "RedisPoolKit pools per instance on this server.", 1);
        var surge = new Option<double>("--surge") { Description = "Instances running at once during a deploy, as a multiple of --instances.", DefaultValueFactory = _ => 2.0 };
        surge.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double>() < 1.0)
            {
                r.AddError("--surge must be at least 1.0 (1.0: no extra instances during a deploy).");
            }
        });
        var headroom = new Option<double>("--headroom") { Description = "Share of maxclients kept free even at the surge (0.2 = stay under 80 %).", DefaultValueFactory = _ => 0.2 };
        headroom.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<double>();
            if (value is < 0 or >= 1)
            {
                r.AddError("--headroom must be at least 0 and less than 1 (0.2 keeps 20 % of maxclients free).");
            }
        });
        var reserved = PositiveIntOption("--reserved", "Sockets other clients hold (replicas, admin sessions, exporters, services without a pool).", 0, minimum: 0);
        var command = new Command("budget", "The MaxConnections per pool and instance that keeps a deploy surge under the headroom, and the appsettings.json snippet. Pure arithmetic: no server needed.")
        {
            json, maxClients, instances, pools, surge, headroom, reserved,
        };
        command.SetAction((parse, _) => Guard(c => BudgetCommand.RunAsync(
            c,
            new BudgetInput(parse.GetValue(maxClients), parse.GetValue(instances), parse.GetValue(pools), parse.GetValue(surge), parse.GetValue(headroom), parse.GetValue(reserved)),
            parse.GetValue(json))));
        return command;
    }
}
