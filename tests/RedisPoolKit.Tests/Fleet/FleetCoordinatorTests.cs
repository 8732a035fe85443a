using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Fleet;

public sealed class FleetCoordinatorTests
{
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new();
    private readonly FakeRegistry _registry = new();
    private readonly List<int> _applied = [];

    [Fact]
    public void Before_its_first_heartbeat_an_instance_holds_only_what_it_needs_to_work()
    {
        var coordinator = Create();

        Assert.Equal(2, coordinator.Limit);
        Assert.Equal([2], _applied);
        Assert.Equal(0, coordinator.Instances);
    }

    [Fact]
    public async Task It_grows_only_to_a_share_seen_for_a_whole_interval_and_shrinks_at_once()
    {
        var coordinator = Create();
        _registry.Members = ["pod-0", "pod-1"];

        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(2, coordinator.Limit);
        Assert.Equal(2, coordinator.Instances);

        _time.Advance(s_interval - TimeSpan.FromMilliseconds(1));
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(2, coordinator.Limit);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(16, coordinator.Limit);

        _registry.Members = [.. Enumerable.Range(0, 10).Select(i => $"pod-{i}")];
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(4, coordinator.Limit);
        Assert.Equal(10, coordinator.Instances);
        Assert.Equal(2, coordinator.Changes);
        Assert.Equal(4, _applied[^1]);
    }

    [Fact]
    public async Task Growth_takes_the_smallest_share_seen_while_it_waited()
    {
        var coordinator = Create();
        _registry.Members = ["pod-0"];
        await coordinator.BeatAsync(CancellationToken.None);

        _registry.Members = ["pod-0", "pod-1", "pod-2"];
        _time.Advance(s_interval);
        await coordinator.BeatAsync(CancellationToken.None);
        _registry.Members = ["pod-0"];
        await coordinator.BeatAsync(CancellationToken.None);

        Assert.Equal(14, coordinator.Limit);
    }

    [Fact]
    public async Task At_critical_utilization_the_share_halves_at_once_and_comes_back_after_an_interval()
    {
        var coordinator = Create(ownMax: 40);
        _registry.Members = ["pod-0", "pod-1"];
        await coordinator.BeatAsync(CancellationToken.None);
        _time.Advance(s_interval);
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(20, coordinator.Limit);

        coordinator.OnUtilizationChanged(RedisServerUtilizationLevel.Critical);
        Assert.Equal(10, coordinator.Limit);

        coordinator.OnUtilizationChanged(RedisServerUtilizationLevel.Warning);
        Assert.Equal(10, coordinator.Limit);
        _time.Advance(s_interval);
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(20, coordinator.Limit);
    }

    [Fact]
    public async Task Without_a_heartbeat_for_the_ttl_it_falls_back_to_what_it_needs_to_work()
    {
        var coordinator = Create();
        _registry.Members = ["pod-0"];
        await coordinator.BeatAsync(CancellationToken.None);
        _time.Advance(s_interval);
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(16, coordinator.Limit);

        _registry.Failure = new InvalidOperationException("server away");
        _time.Advance(s_ttl - TimeSpan.FromMilliseconds(1));
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(16, coordinator.Limit);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await coordinator.BeatAsync(CancellationToken.None);
        Assert.Equal(2, coordinator.Limit);
        Assert.Equal(0, coordinator.Instances);
    }

    [Fact]
    public void Each_wait_is_the_interval_shortened_by_up_to_a_fifth()
    {
        Assert.Equal(s_interval, FleetCoordinator.NextDelay(s_interval, 0));
        Assert.Equal(TimeSpan.FromSeconds(4.5), FleetCoordinator.NextDelay(s_interval, 0.5));
        Assert.InRange(FleetCoordinator.NextDelay(s_interval, 0.999999), TimeSpan.FromSeconds(4), s_interval);
    }

    [Fact]
    public async Task Heartbeats_follow_the_jittered_interval_from_the_start_of_the_previous_one()
    {
        var coordinator = Create(random: () => 0.5);
        coordinator.Start();
        await _registry.WaitForBeatAsync(1);

        _time.Advance(TimeSpan.FromSeconds(4.5) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, _registry.Beats);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await _registry.WaitForBeatAsync(2);

        _time.Advance(TimeSpan.FromSeconds(4.5));
        await _registry.WaitForBeatAsync(3);

        await coordinator.DisposeAsync();
        Assert.Equal(1, _registry.Deregistrations);
    }

    [Fact]
    public async Task A_halted_instance_leaves_its_registration_behind()
    {
        var coordinator = Create();
        coordinator.Start();
        await _registry.WaitForBeatAsync(1);

        await coordinator.HaltAsync();
        _time.Advance(s_interval * 3);

        Assert.Equal(1, _registry.Beats);
        Assert.Equal(0, _registry.Deregistrations);
    }

    private FleetCoordinator Create(int ownMax = 16, Func<double>? random = null) => new(
        "orders",
        new RedisPoolFleetOptions { Enabled = true, MaxConnections = 40, HeartbeatInterval = s_interval, InstanceTtl = s_ttl },
        "pod-0",
        ownMax,
        floor: 2,
        _registry,
        _applied.Add,
        _time,
        NullLogger.Instance,
        random ?? (() => 0));

    private sealed class FakeRegistry : IFleetRegistry
    {
        private readonly SemaphoreSlim _beat = new(0);
        private int _beats;
        private int _seen;

        public IReadOnlyList<string> Members { get; set; } = ["pod-0"];

        public Exception? Failure { get; set; }

        public int Beats => Volatile.Read(ref _beats);

        public int Deregistrations { get; private set; }

        public Task<IReadOnlyList<string>?> HeartbeatAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _beats);
            _beat.Release();
            return Failure is { } failure ? Task.FromException<IReadOnlyList<string>?>(failure) : Task.FromResult<IReadOnlyList<string>?>(Members);
        }

        public Task DeregisterAsync(CancellationToken cancellationToken)
        {
            Deregistrations++;
            return Task.CompletedTask;
        }

        /// <summary>Waits (on the event, in real time) until heartbeat number <paramref name="n"/> has been sent.</summary>
        public async Task WaitForBeatAsync(int n)
        {
            while (_seen < n)
            {
                Assert.True(await _beat.WaitAsync(s_wait), $"heartbeat {n} was not sent (sent {Beats})");
                _seen++;
            }
        }
    }
}
