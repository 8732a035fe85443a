using System.Globalization;

namespace IncidentReplay;

/// <summary>Runs the scenario's timeline through one workload while the sampler watches the server.</summary>
internal sealed class PhaseRunner(Scenario scenario, ServerAdmin admin)
{
    private static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Runs the phase; <paramref name="progress"/> is called after every server sample.</summary>
    public async Task RunAsync(IWorkload workload, PhaseRecorder recorder, Action<Stage> progress)
    {
        await admin.Database.KeyDeleteAsync(Scenario.QueueKey).ConfigureAwait(false);
        using var samplerStop = new CancellationTokenSource();
        recorder.Start();
        workload.Observe(recorder);
        var sampler = SampleAsync(workload, recorder, progress, samplerStop.Token);
        try
        {
            await workload.StartAsync(CancellationToken.None).ConfigureAwait(false);
            await DriveAsync(workload, recorder).ConfigureAwait(false);
        }
        finally
        {
            recorder.Stop();
            await samplerStop.CancelAsync().ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
            var left = await admin.Database.ListRangeAsync(Scenario.QueueKey).ConfigureAwait(false);
            recorder.SettleQueue([.. left.Select(v => v.ToString())]);
            await admin.Database.KeyDeleteAsync(Scenario.QueueKey).ConfigureAwait(false);
        }
    }

    private async Task DriveAsync(IWorkload workload, PhaseRecorder recorder)
    {
        using var load = new CancellationTokenSource();
        using var consumers = new CancellationTokenSource();
        var loadTasks = new List<Task>();
        var consumerTasks = new List<Task>();
        for (var instance = 0; instance < Scenario.InstancesPerService; instance++)
        {
            var i = instance;
            loadTasks.Add(Task.Run(() => ArrivalsAsync(recorder, "order-service", scenario.OrderRate, load.Token,
                seq => workload.OrderRequestAsync(i, (int)(seq % scenario.SpikeWorkers), seq, CancellationToken.None))));
            loadTasks.Add(Task.Run(() => ArrivalsAsync(recorder, "cart-service", scenario.CartRate, load.Token,
                seq => workload.CartRequestAsync(i, (int)(seq % scenario.SpikeWorkers), seq, CancellationToken.None))));
            for (var worker = 0; worker < scenario.SpikeWorkers; worker++)
            {
                var w = worker;
                consumerTasks.Add(Task.Run(() => ConsumeAsync(workload, recorder, i, w, consumers.Token)));
            }
        }

        var phaseName = recorder.Name;
        loadTasks.Add(Task.Run(() => ArrivalsAsync(recorder, "order-service (notify)", scenario.NotifyRate, load.Token, async seq =>
        {
            var id = string.Create(CultureInfo.InvariantCulture, $"{phaseName}-{seq}");
            try
            {
                await workload.PushAsync(id, CancellationToken.None).ConfigureAwait(false);
                recorder.Produce(id);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                recorder.PushFailed(id);
                throw;
            }
        })));

        await Task.Delay(scenario.Duration).ConfigureAwait(false);
        await load.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(loadTasks).ConfigureAwait(false);

        // Every arrival ends as completed or failed: the requests still running finish within the request budget.
        while (recorder.Outstanding > 0)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        // The steady consumers drain what the producers left, as a real worker fleet would after the spike.
        await admin.DrainAsync(Scenario.QueueKey, stall: scenario.DrainTimeout, cap: ServerAdmin.DrainCap).ConfigureAwait(false);

        await consumers.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(consumerTasks).ConfigureAwait(false);
    }

    /// <summary>
    /// Open-loop arrivals for one service (one instance, or the notify producer): evenly spaced at <paramref name="rate"/>
    /// per second, ten times that during the spike, whether or not earlier requests have finished. An arrival finding
    /// its instance at <see cref="Scenario.MaxConcurrentPerInstance"/> requests is shed at once.
    /// </summary>
    private async Task ArrivalsAsync(PhaseRecorder recorder, string service, double rate, CancellationToken stopping, Func<long, Task> request)
    {
        var inFlight = 0;
        long sequence = 0;
        var next = TimeSpan.Zero;
        while (!stopping.IsCancellationRequested)
        {
            var now = recorder.Elapsed;
            while (next <= now && next < scenario.Duration)
            {
                var seq = sequence++;
                recorder.Offer(service);
                if (Interlocked.Increment(ref inFlight) > Scenario.MaxConcurrentPerInstance)
                {
                    Interlocked.Decrement(ref inFlight);
                    recorder.Shed(service);
                }
                else
                {
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await recorder.MeasureAsync(service, () => request(seq)).ConfigureAwait(false);
                        }
                        finally
                        {
                            Interlocked.Decrement(ref inFlight);
                        }
                    });
                }

                next += TimeSpan.FromSeconds(1 / (rate * scenario.RateFactorAt(next)));
            }

            if (next >= scenario.Duration)
            {
                return;
            }

            var wait = next - recorder.Elapsed;
            await Pause(wait > TimeSpan.FromMilliseconds(1) ? wait : TimeSpan.FromMilliseconds(1), stopping).ConfigureAwait(false);
        }
    }

    private async Task ConsumeAsync(IWorkload workload, PhaseRecorder recorder, int instance, int consumer, CancellationToken stopping)
    {
        var running = false;
        while (!stopping.IsCancellationRequested)
        {
            if (consumer >= scenario.WorkersAt(recorder.Elapsed))
            {
                if (running)
                {
                    running = false;
                    await workload.ConsumerStoppedAsync(instance, consumer).ConfigureAwait(false);
                }

                await Pause(TimeSpan.FromMilliseconds(50), stopping).ConfigureAwait(false);
                continue;
            }

            running = true;
            try
            {
                // Not cancelled mid-command: a BLPOP abandoned after the server popped would lose the item.
                var item = await workload.PopAsync(instance, consumer, CancellationToken.None).ConfigureAwait(false);
                if (item is not null)
                {
                    recorder.Consume(item);
                }
            }
            catch (Exception ex)
            {
                recorder.RecordConsumerError(ex);
                await Pause(TimeSpan.FromMilliseconds(200), stopping).ConfigureAwait(false);
            }
        }

        if (running)
        {
            await workload.ConsumerStoppedAsync(instance, consumer).ConfigureAwait(false);
        }
    }

    private async Task SampleAsync(IWorkload workload, PhaseRecorder recorder, Action<Stage> progress, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(SampleInterval);
        do
        {
            try
            {
                var (connected, blocked, rejected) = await admin.SampleAsync().ConfigureAwait(false);
                recorder.AddSample(connected, blocked, rejected, workload.PoolSockets);
            }
            catch (StackExchange.Redis.RedisException)
            {
                // A missed sample is a gap in the chart, not a reason to stop the replay.
            }

            progress(scenario.StageAt(recorder.Elapsed));
        }
        while (await Tick(timer, stopping).ConfigureAwait(false));

        // One last sample after the load stopped, so the chart shows where the phase ended.
        var last = await admin.SampleAsync().ConfigureAwait(false);
        recorder.AddSample(last.Connected, last.Blocked, last.Rejected, workload.PoolSockets);
    }

    private static async Task<bool> Tick(PeriodicTimer timer, CancellationToken stopping)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task Pause(TimeSpan delay, CancellationToken stopping)
    {
        try
        {
            await Task.Delay(delay, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
