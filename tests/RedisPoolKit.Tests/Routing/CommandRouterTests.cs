using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace RedisPoolKit.Tests.Routing;

/// <summary>What routing one command takes and gives back: an admission permit and a count on one member.</summary>
public sealed class CommandRouterTests : IAsyncLifetime
{
    private const string PoolName = "router-tests";

    private readonly MultiplexerSetFixture _f = new(minMultiplexers: 1, maxMultiplexers: 2);
    private readonly RedisPoolMetrics _metrics = new(PoolName, meterFactory: null, statistics: null, new RedisPoolOptions());
    private readonly AdmissionLimiter _admission;
    private readonly CommandRouter _router;

    public CommandRouterTests()
    {
        _admission = new AdmissionLimiter(PoolName, maxInFlight: 1, maxQueueLength: 1, TimeSpan.FromSeconds(2), _f.Time, _metrics);
        _router = new CommandRouter(PoolName, _admission, _f.Set, _metrics);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _f.DisposeAsync();
        _metrics.Dispose();
    }

    [Fact]
    public async Task TryRoute_takes_a_permit_and_counts_the_command_on_the_member_and_Exit_gives_both_back()
    {
        var member = await ConnectAsync();

        Assert.True(_router.TryRoute(-1, out var route));

        Assert.Same(member, route.Entry);
        Assert.Same(member.Multiplexer, route.Database.Multiplexer);
        Assert.Equal((1, 1), (member.Outstanding, _admission.InFlight));

        _router.Exit(route, failure: null);

        Assert.Equal((0, 0), (member.Outstanding, _admission.InFlight));
    }

    [Fact]
    public async Task TryRoute_declines_without_a_member_or_a_free_permit_and_takes_nothing()
    {
        Assert.False(_router.TryRoute(-1, out _));
        Assert.Equal(0, _admission.InFlight);

        var member = await ConnectAsync();
        Assert.True(_router.TryRoute(-1, out _));
        Assert.False(_router.TryRoute(-1, out _));

        Assert.Equal((1, 1), (member.Outstanding, _admission.InFlight));
    }

    [Fact]
    public async Task RouteAsync_connects_the_first_member_when_none_exists()
    {
        var route = await _router.RouteAsync(3).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var member = Assert.Single(_f.Set.Entries);
        Assert.Same(member, route.Entry);
        Assert.Equal(3, route.Database.Database);
        Assert.Equal(1, _f.Connects);
        Assert.Equal(1, member.Outstanding);
    }

    [Fact]
    public async Task RouteAsync_queues_for_a_permit_and_counts_on_the_member_only_once_admitted()
    {
        var member = await ConnectAsync();
        Assert.True(_router.TryRoute(-1, out var first));

        var queued = _router.RouteAsync(-1).AsTask();
        Assert.False(queued.IsCompleted);
        Assert.Equal(1, member.Outstanding);

        _router.Exit(first, failure: null);
        var second = await queued.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Same(member, second.Entry);
        Assert.Equal((1, 1), (member.Outstanding, _admission.InFlight));
    }

    [Fact]
    public async Task RouteAsync_times_out_after_QueueTimeout_without_counting_on_a_member()
    {
        var member = await ConnectAsync();
        Assert.True(_router.TryRoute(-1, out _));
        var queued = _router.RouteAsync(-1).AsTask();

        _f.Time.Advance(TimeSpan.FromSeconds(2));

        var ex = await Assert.ThrowsAsync<RedisPoolExhaustedException>(() => queued.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(RedisPoolExhaustedReason.QueueTimeout, ex.Reason);
        Assert.Equal((1, 1), (member.Outstanding, _admission.InFlight));
    }

    [Fact]
    public async Task A_retired_member_gets_no_new_command_while_it_drains()
    {
        await _f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await _f.NextAddedAsync();
        var second = await ScaleUpAsync(first);
        MultiplexerSetFixture.Unload(first, MultiplexerScaler.SaturationOutstanding);
        var retiring = _f.Set.RetireAsync(first, "test");

        Assert.True(_router.TryRoute(-1, out var route));

        Assert.Same(second, route.Entry);
        Assert.Equal(0, first.Outstanding);
        _router.Exit(route, failure: null);
        await retiring.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Routing_to_a_saturated_member_for_the_saturation_period_adds_a_member()
    {
        var member = await ConnectAsync();
        MultiplexerSetFixture.Load(member, MultiplexerScaler.SaturationOutstanding);

        Assert.True(_router.TryRoute(-1, out var route));
        _router.Exit(route, failure: null);
        _f.Time.Advance(MultiplexerScaler.SaturationPeriod);
        Assert.True(_router.TryRoute(-1, out route));
        _router.Exit(route, failure: null);

        Assert.NotSame(member, await _f.NextAddedAsync());
        Assert.Equal(2, _f.Set.Count);
    }

    [Fact]
    public async Task Exit_counts_a_failure_by_its_type_but_not_a_cancellation()
    {
        using var failed = new MetricCollector<long>(_metrics.Meter, RedisPoolInstrumentNames.CommandsFailed);
        await ConnectAsync();

        Assert.True(_router.TryRoute(-1, out var route));
        _router.Exit(route, new TimeoutException("slow"));
        Assert.True(_router.TryRoute(-1, out route));
        _router.Exit(route, new OperationCanceledException());

        var measurement = Assert.Single(failed.GetMeasurementSnapshot(), m => Equals(m.Tags[RedisPoolInstrumentNames.PoolNameTag], PoolName));
        Assert.Equal(typeof(TimeoutException).FullName, measurement.Tags[RedisPoolInstrumentNames.ErrorTypeTag]);
        Assert.Equal(0, _admission.InFlight);
    }

    private async Task<MultiplexerEntry> ConnectAsync()
    {
        await _f.Set.EnsureMinimumAsync(CancellationToken.None);
        return await _f.NextAddedAsync();
    }

    private async Task<MultiplexerEntry> ScaleUpAsync(MultiplexerEntry first)
    {
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding);
        _f.Set.Scaler.NoteLoad(first);
        _f.Time.Advance(MultiplexerScaler.SaturationPeriod);
        _f.Set.Scaler.NoteLoad(first);
        return await _f.NextAddedAsync();
    }
}
