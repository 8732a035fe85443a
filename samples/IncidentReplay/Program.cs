using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace IncidentReplay;

/// <summary>Entry point; <see cref="Main"/> is public so the integration tests can run a replay in-process.</summary>
public static class ReplayApp
{
    public static async Task<int> Main(string[] args)
    {
        ReplayOptions options;
        try
        {
            options = ReplayOptions.Parse(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 2;
        }

        if (options.ShowHelp)
        {
            Console.WriteLine(ReplayOptions.Help);
            return 0;
        }

        // Phase A opens hundreds of sockets from async continuations; a cold thread pool would add its own stalls.
        ThreadPool.SetMinThreads(128, 128);
        var wall = Stopwatch.StartNew();

        ReplayServer server;
        try
        {
            server = options.Redis is null ? await ReplayServer.StartAsync(options.MaxClients) : ReplayServer.Existing(options.Redis);
        }
        catch (RedisPoolKit.Testing.RedisServerStartException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 2;
        }

        await using (server)
        {
            ServerAdmin admin;
            try
            {
                admin = server.Admin is { } harnessAdmin ? ServerAdmin.Over(harnessAdmin, server.Endpoint) : await ServerAdmin.ConnectAsync(server.Endpoint);
            }
            catch (StackExchange.Redis.RedisConnectionException ex)
            {
                Console.Error.WriteLine($"Cannot reach Redis at {server.Endpoint}: {ex.Message}");
                return 2;
            }

            await using (admin)
            {
                int? restoreMaxClients = null;
                var maxClients = options.MaxClients;
                if (!server.Owned)
                {
                    var current = await admin.GetMaxClientsAsync();
                    if (options.AllowConfig)
                    {
                        restoreMaxClients = current;
                        await admin.SetMaxClientsAsync(options.MaxClients);
                    }
                    else
                    {
                        maxClients = current;
                        AnsiConsole.MarkupLine($"[yellow]Using the server's maxclients {current} as it is (pass --allow-config to set it to {options.MaxClients}).[/]");
                    }
                }

                try
                {
                    return options.Autoscale
                        ? await RunAutoscaleAsync(options, server, admin, maxClients, wall)
                        : await RunAsync(options, server, admin, new Scenario(options, maxClients), wall);
                }
                finally
                {
                    if (restoreMaxClients is { } original)
                    {
                        await admin.SetMaxClientsAsync(original);
                    }
                }
            }
        }
    }

    private static async Task<int> RunAsync(ReplayOptions options, ReplayServer server, ServerAdmin admin, Scenario scenario, Stopwatch wall)
    {
        var budget = Budget.For(scenario.MaxClients);
        var naive = new PhaseRecorder("A", "A: naive StackExchange.Redis");
        var idiomatic = new PhaseRecorder("B", "B: idiomatic StackExchange.Redis");
        var pooled = new PhaseRecorder("C", "C: RedisPoolKit");
        var runner = new PhaseRunner(scenario, admin);
        var baseline = (await admin.SampleAsync()).Connected;
        ProgressTask? progressTask = null;

        AnsiConsole.MarkupLine($"[bold]Redis max-clients incident replay[/] against {server.Endpoint} ({(server.Owned ? "started for this run" : "existing server")}), maxclients {scenario.MaxClients} standing for 1000.");
        AnsiConsole.MarkupLine($"Each phase: {Seconds(scenario.Duration)} of order-service, cart-service and notification-worker x{Scenario.InstancesPerService} instances; open-loop arrivals "
            + $"{scenario.OrderRate:0}/s per order-service instance, {scenario.CartRate:0}/s per cart-service instance, {scenario.NotifyRate:0} notifications/s, x{Scenario.SpikeFactor} (and {scenario.SpikeWorkers} consumers per instance) during the spike from {Seconds(scenario.SpikeStart)} to {Seconds(scenario.SpikeEnd)}; then {Scenario.QueueKey} is drained while it shrinks (given up after {Seconds(scenario.DrainTimeout)} without progress).");

        var phases = new List<(PhaseRecorder Recorder, IReadOnlyList<string> Labels)>();
        foreach (var (recorder, create, heading) in new (PhaseRecorder, Func<IWorkload>, string)[]
                 {
                     (naive, () => new NaiveWorkload(server.Endpoint), "Phase A, naive - the anti-patterns behind the incident:"),
                     (idiomatic, () => new IdiomaticWorkload(server.Endpoint), "Phase B, idiomatic StackExchange.Redis:"),
                     (pooled, () => new PooledWorkload(server.Endpoint, budget), "Phase C, RedisPoolKit:"),
                 })
        {
            if (phases.Count > 0)
            {
                // Every phase must start on an empty server, or the previous phase's leftovers would be counted against it.
                var left = await admin.WaitForClientsAtMostAsync(baseline, TimeSpan.FromSeconds(30));
                AnsiConsole.MarkupLine(left <= baseline
                    ? $"The previous phase's connections are gone: connected_clients is back to {left}."
                    : $"[yellow]connected_clients is still {left} (baseline {baseline}) 30 s after the previous phase; {Markup.Escape(recorder.Title)} starts anyway.[/]");
            }

            IReadOnlyList<string> labels = [];
            await RunPhaseAsync(recorder, async () =>
            {
                var workload = create();
                labels = workload.Labels;
                PrintLabels(heading, labels);
                await using (workload)
                {
                    await runner.RunAsync(workload, recorder, stage => Progress(recorder, stage));
                }
            });
            phases.Add((recorder, labels));
        }

        var report = new Report(scenario, options, naive, idiomatic, pooled, await admin.RedisVersionAsync());
        report.WriteConsole();
        var path = report.WriteFiles(options.OutDirectory, phases.Select(p => p.Labels).ToList());
        AnsiConsole.MarkupLine($"Report: [link]{Markup.Escape(Path.GetFullPath(path))}[/] (charts beside it). Total wall time {Seconds(wall.Elapsed)}.");
        return report.Passed ? 0 : 1;

        async Task RunPhaseAsync(PhaseRecorder phase, Func<Task> run)
        {
            try
            {
                if (AnsiConsole.Profile.Capabilities.Interactive)
                {
                    await AnsiConsole.Progress()
                        .AutoClear(false)
                        .Columns(new SpinnerColumn(), new TaskDescriptionColumn { Alignment = Justify.Left }, new ElapsedTimeColumn())
                        .StartAsync(async context =>
                        {
                            var task = context.AddTask(Markup.Escape(phase.Title), maxValue: scenario.Duration.TotalSeconds);
                            progressTask = task;
                            await run();
                            task.Value = task.MaxValue;
                            task.Description = Markup.Escape(Status(phase, Stage.Drain) + " - done");
                        });
                }
                else
                {
                    await run();
                }
            }
            catch (Exception ex)
            {
                // Reported in the table and the verdict: a phase that cannot run is a result, not a crash.
                phase.FailedToRun = $"{ex.GetType().Name}: {ex.Message}";
                AnsiConsole.MarkupLine($"[red]{Markup.Escape(phase.Title)} could not run: {Markup.Escape(phase.FailedToRun)}[/]");
            }
            finally
            {
                progressTask = null;
            }
        }

        void Progress(PhaseRecorder phase, Stage stage)
        {
            if (progressTask is { } task)
            {
                task.Value = Math.Min(phase.Elapsed.TotalSeconds, scenario.Duration.TotalSeconds);
                task.Description = Markup.Escape(Status(phase, stage));
            }
            else if ((int)(phase.Elapsed.TotalMilliseconds / 250) % 8 == 0)
            {
                Console.WriteLine(Status(phase, stage));
            }
        }

        string Status(PhaseRecorder phase, Stage stage)
        {
            var last = phase.Samples.LastOrDefault();
            return string.Create(CultureInfo.InvariantCulture,
                $"{phase.Title} | {stage,-8} {phase.Elapsed.TotalSeconds,5:0.0}s | connected_clients {last.ConnectedClients,3}/{scenario.MaxClients} | rejected +{phase.RejectedConnectionsDelta} | blocked {last.BlockedClients} | offered {phase.Requests} | completed {phase.Successes} | failed {phase.Errors} | consumed {phase.ConsumedExactlyOnce}");
        }
    }

    private static async Task<int> RunAutoscaleAsync(ReplayOptions options, ReplayServer server, ServerAdmin admin, int maxClients, Stopwatch wall)
    {
        var replay = new AutoscaleReplay(server.Endpoint, admin, options.AutoscaleDuration);
        AnsiConsole.MarkupLine($"[bold]Autoscaling replay[/] against {server.Endpoint}, maxclients {maxClients}: {AutoscaleReplay.WorkerService} runs {AutoscaleReplay.SteadyInstances} instances "
            + $"({AutoscaleReplay.SteadyConsumers} BLPOP consumer each, {AutoscaleReplay.SpikeConsumers} during the spike from {Seconds(replay.SpikeStart)} to {Seconds(replay.SpikeEnd)}); "
            + $"the autoscaler doubles it to {AutoscaleReplay.ScaledInstances} at {Seconds(replay.ScaleOut)} and scales back in at {Seconds(replay.SpikeEnd)}. "
            + $"Each instance is a pool with MaxConnections = {AutoscaleReplay.OwnMaxConnections}; cart-service (2 instances) and the notification producer keep their own pools. Phases of {Seconds(options.AutoscaleDuration)}.");
        var baseline = (await admin.SampleAsync()).Connected;
        AnsiConsole.MarkupLine("Phase 1: fleet budget off, each instance holds to its own MaxConnections.");
        var without = await replay.RunAsync(fleet: false);
        var left = await admin.WaitForClientsAtMostAsync(baseline, TimeSpan.FromSeconds(30));
        if (left > baseline)
        {
            AnsiConsole.MarkupLine($"[yellow]connected_clients is still {left} (baseline {baseline}) 30 s after phase 1; phase 2 starts anyway.[/]");
        }

        AnsiConsole.MarkupLine($"Phase 2: fleet budget on, Fleet.MaxConnections = {AutoscaleReplay.FleetMaxConnections} for every instance together (heartbeat {Seconds(AutoscaleReplay.Heartbeat)}).");
        var with = await replay.RunAsync(fleet: true);
        var passed = AutoscaleReplay.Report(without, with, maxClients);
        AnsiConsole.MarkupLine($"Total wall time {Seconds(wall.Elapsed)}.");
        return passed ? 0 : 1;
    }

    private static void PrintLabels(string heading, IEnumerable<string> labels)
    {
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(heading)}[/]");
        foreach (var label in labels)
        {
            AnsiConsole.MarkupLine($"  - {Markup.Escape(label)}");
        }
    }

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.#' s'", CultureInfo.InvariantCulture);
}
