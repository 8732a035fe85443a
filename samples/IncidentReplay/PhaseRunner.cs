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
        var sampler = SampleAsync(recorder, progress, samplerStop.Token);
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
            for (var worker = 0; worker < scenario.SpikeWorkers; worker++)
            {
                var (i, w) = (instance, worker);
                loadTasks.Add(Task.Run(() => LoopAsync(recorder, w, Scenario.OrderThinkTime, load.Token,
                    seq => recorder.MeasureAsync("order-service", () => workload.OrderRequestAsync(i, w, seq, load.Token), load.Token))));
                loadTasks.Add(Task.Run(() => LoopAsync(recorder, w, Scenario.CartThinkTime, load.Token,
                    seq => recorder.MeasureAsync("cart-service", () => workload.CartRequestAsync(i, w, seq, load.Token), load.Token))));
                consumerTasks.Add(Task.Run(() => ConsumeAsync(workload, recorder, i, w, consumers.Token)));
            }
        }

        var phaseName = recorder.Name;
        for (var producer = 0; producer < scenario.SpikeWorkers; producer++)
        {
            var p = producer;
            loadTasks.Add(Task.Run(() => LoopAsync(recorder, p, Scenario.ProducerThinkTime, load.Token, async seq =>
            {
                var id = string.Create(CultureInfo.InvariantCulture, $"{phaseName}-{p}-{seq}");
                await recorder.MeasureAsync("order-service (notify)", async () =>
                {
                    try
                    {
                        await workload.PushAsync(id, load.Token).ConfigureAwait(false);
                        recorder.Produce(id);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        recorder.PushFailed(id);
                        throw;
                    }
                }, load.Token).ConfigureAwait(false);
            })));
        }

        await Task.Delay(scenario.Duration).ConfigureAwait(false);
        await load.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(loadTasks).ConfigureAwait(false);

        // The steady consumers drain what the producers left, as a real worker fleet would after the spike.
        var drainDeadline = recorder.Elapsed + scenario.DrainTimeout;
        while (recorder.Elapsed < drainDeadline && await admin.Database.ListLengthAsync(Scenario.QueueKey).ConfigureAwait(false) > 0)
        {
            await Task.Delay(100).ConfigureAwait(false);
        }

        await consumers.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(consumerTasks).ConfigureAwait(false);
    }

    private async Task LoopAsync(PhaseRecorder recorder, int worker, TimeSpan thinkTime, CancellationToken stopping, Func<long, Task> request)
    {
        long sequence = worker * 1_000_000L;
        while (!stopping.IsCancellationRequested)
        {
            if (worker >= scenario.WorkersAt(recorder.Elapsed))
            {
                await Pause(TimeSpan.FromMilliseconds(50), stopping).ConfigureAwait(false);
                continue;
            }

            await request(sequence++).ConfigureAwait(false);
            await Pause(thinkTime, stopping).ConfigureAwait(false);
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
                recorder.RecordError("notification-worker", ex);
                await Pause(TimeSpan.FromMilliseconds(200), stopping).ConfigureAwait(false);
            }
        }

        if (running)
        {
            await workload.ConsumerStoppedAsync(instance, consumer).ConfigureAwait(false);
        }
    }

    private async Task SampleAsync(PhaseRecorder recorder, Action<Stage> progress, CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(SampleInterval);
        do
        {
            try
            {
                var (connected, blocked, rejected) = await admin.SampleAsync().ConfigureAwait(false);
                recorder.AddSample(connected, blocked, rejected);
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
        recorder.AddSample(last.Connected, last.Blocked, last.Rejected);
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
