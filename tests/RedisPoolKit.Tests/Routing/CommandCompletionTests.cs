using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Routing;

public sealed class CommandCompletionTests
{
    private readonly Recorder _recorder = new();

    [Fact]
    public async Task A_command_that_faults_later_reports_its_failure_and_releases_once()
    {
        var command = Pending<string>();
        var tracked = CommandCompletion.Track(command.Task, new RecordingExit(_recorder));
        Assert.Equal(0, _recorder.Exits);

        var failure = new InvalidOperationException("server said no");
        command.SetException(failure);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => tracked);
        Assert.Same(failure, thrown);
        Assert.Equal(1, _recorder.Exits);
        Assert.Same(failure, _recorder.LastFailure);
    }

    [Fact]
    public async Task A_command_that_faulted_before_it_was_tracked_reports_its_failure_and_is_returned_as_is()
    {
        var failure = new InvalidOperationException("server said no");
        var command = Task.FromException<string>(failure);

        var tracked = CommandCompletion.Track(command, new RecordingExit(_recorder));

        Assert.Same(command, tracked);
        Assert.Same(failure, await Assert.ThrowsAsync<InvalidOperationException>(() => tracked));
        Assert.Equal(1, _recorder.Exits);
        Assert.Same(failure, _recorder.LastFailure);
    }

    [Fact]
    public async Task A_command_without_a_result_that_faults_later_reports_its_failure_and_releases_once()
    {
        var command = Pending<bool>();
        var tracked = CommandCompletion.Track((Task)command.Task, new RecordingExit(_recorder));

        var failure = new InvalidOperationException("server said no");
        command.SetException(failure);

        Assert.Same(failure, await Assert.ThrowsAsync<InvalidOperationException>(() => tracked));
        Assert.Equal(1, _recorder.Exits);
        Assert.Same(failure, _recorder.LastFailure);
    }

    [Fact]
    public async Task A_command_canceled_later_releases_without_reporting_a_failure()
    {
        var command = Pending<string>();
        var tracked = CommandCompletion.Track(command.Task, new RecordingExit(_recorder));

        command.SetCanceled();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tracked);
        Assert.True(tracked.IsCanceled);
        Assert.Equal(1, _recorder.Exits);
        Assert.Null(_recorder.LastFailure);
    }

    [Fact]
    public void A_command_canceled_before_it_was_tracked_releases_without_reporting_a_failure()
    {
        var command = Task.FromCanceled<string>(new CancellationToken(canceled: true));

        var tracked = CommandCompletion.Track(command, new RecordingExit(_recorder));

        Assert.Same(command, tracked);
        Assert.Equal(1, _recorder.Exits);
        Assert.Null(_recorder.LastFailure);
    }

    [Fact]
    public async Task A_command_completed_synchronously_releases_once_and_is_returned_as_is()
    {
        var command = Task.FromResult("value");

        var tracked = CommandCompletion.Track(command, new RecordingExit(_recorder));

        Assert.Same(command, tracked);
        Assert.Equal("value", await tracked);
        Assert.Equal(1, _recorder.Exits);
        Assert.Null(_recorder.LastFailure);
    }

    [Fact]
    public async Task The_release_happens_before_the_caller_sees_the_result()
    {
        var command = Pending<string>();
        var tracked = CommandCompletion.Track(command.Task, new RecordingExit(_recorder));
        var exitsSeenByCaller = tracked.ContinueWith(_ => _recorder.Exits, TaskScheduler.Default);

        command.SetResult("value");

        Assert.Equal("value", await tracked);
        Assert.Equal(1, await exitsSeenByCaller);
    }

    [Fact]
    public async Task Every_command_releases_exactly_once_under_concurrency_and_the_limiter_drains_to_zero()
    {
        const int Commands = 2048;
        var limiter = new AdmissionLimiter(
            "cache", Commands, 0, TimeSpan.FromSeconds(1), new FakeTimeProvider(),
            new RedisPoolMetrics("cache", meterFactory: null, () => new RedisPoolStatistics(), new RedisPoolOptions { Configuration = "127.0.0.1:6379" }));
        var exits = new int[Commands];

        // Completion races tracking: some commands complete before Track looks, some after, on other threads.
        var commands = Enumerable.Range(0, Commands).Select(i => Task.Run(async () =>
        {
            Assert.True(limiter.TryEnter());
            var command = Pending<int>();
            var completer = Task.Run(() => Complete(command, i));
            var tracked = CommandCompletion.Track(command.Task, new CountingExit(exits, i, limiter));
            await completer;
            return tracked;
        })).ToArray();

        var tracked = await Task.WhenAll(commands);
        foreach (var task in tracked)
        {
            try
            {
                await task;
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
            {
                // Both outcomes are part of the mix; only the exits are under test.
            }
        }

        Assert.All(exits, count => Assert.Equal(1, count));
        Assert.Equal(0, limiter.InFlight);
    }

    private static TaskCompletionSource<T> Pending<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static void Complete(TaskCompletionSource<int> command, int i)
    {
        switch (i % 3)
        {
            case 0:
                command.SetResult(i);
                break;
            case 1:
                command.SetException(new InvalidOperationException("server said no"));
                break;
            default:
                command.SetCanceled();
                break;
        }
    }

    private sealed class Recorder
    {
        private int _exits;
        private Exception? _lastFailure;

        public int Exits => Volatile.Read(ref _exits);

        public Exception? LastFailure => Volatile.Read(ref _lastFailure);

        public void Record(Exception? failure)
        {
            Volatile.Write(ref _lastFailure, failure);
            Interlocked.Increment(ref _exits);
        }
    }

    // Structs, like the router's own exit, so the tests run the code the pool runs.
    private readonly struct RecordingExit(Recorder recorder) : ICommandExit
    {
        public void Exit(Exception? failure) => recorder.Record(failure);
    }

    private readonly struct CountingExit(int[] exits, int index, AdmissionLimiter limiter) : ICommandExit
    {
        public void Exit(Exception? failure)
        {
            Interlocked.Increment(ref exits[index]);
            limiter.Exit();
        }
    }
}
