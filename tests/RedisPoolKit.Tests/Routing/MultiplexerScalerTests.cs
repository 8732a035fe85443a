namespace RedisPoolKit.Tests.Routing;

/// <summary>When the set grows, shrinks and heals, on a fake clock.</summary>
public sealed class MultiplexerScalerTests
{
    [Fact]
    public async Task A_member_saturated_for_the_saturation_period_gets_exactly_one_more_beside_it()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 3);
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding);

        f.Set.Scaler.NoteLoad(first);
        f.Time.Advance(MultiplexerScaler.SaturationPeriod - TimeSpan.FromMilliseconds(1));
        f.Set.Scaler.NoteLoad(first);
        Assert.Equal(1, f.Connects);

        f.Time.Advance(TimeSpan.FromMilliseconds(1));
        f.Set.Scaler.NoteLoad(first);
        f.Set.Scaler.NoteLoad(first);
        var second = await f.NextAddedAsync();

        Assert.Equal(2, f.Set.Count);
        Assert.Equal(2, f.Connects);
        Assert.Same(first, f.Set.Oldest);
        Assert.NotSame(first, second);

        // The saturation clock restarts after an addition: the next member needs another full period.
        f.Set.Scaler.NoteLoad(first);
        Assert.Equal(2, f.Connects);
    }

    [Fact]
    public async Task A_member_below_the_saturation_mark_never_adds_one()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 3);
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding - 1);

        for (var i = 0; i < 5; i++)
        {
            f.Set.Scaler.NoteLoad(first);
            f.Tick();
        }

        Assert.Equal(1, f.Connects);
    }

    [Theory]
    [InlineData(true, 3)]
    [InlineData(false, 1)]
    public async Task Suspended_growth_or_MaxMultiplexers_stops_a_scale_up(bool suspended, int maxMultiplexers)
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: maxMultiplexers);
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        f.Set.Scaler.GrowthSuspended = suspended;
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding);

        f.Set.Scaler.NoteLoad(first);
        f.Time.Advance(MultiplexerScaler.SaturationPeriod * 3);
        f.Set.Scaler.NoteLoad(first);

        Assert.Equal(1, f.Connects);
        Assert.Equal(1, f.Set.Count);
    }

    [Fact]
    public async Task The_newest_member_idle_for_ScaleInIdle_is_retired_and_closed_and_the_oldest_stays()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 2);
        var (first, second) = await TwoMembersAsync(f);
        MultiplexerSetFixture.Unload(first, MultiplexerScaler.SaturationOutstanding);

        f.Tick((int)(MultiplexerScaler.ScaleInIdle / MultiplexerScaler.MaintenanceInterval) - 1);
        Assert.Equal(2, f.Set.Count);

        f.Tick();
        Assert.Same(second, await f.NextRemovedAsync());
        Assert.Same(first, Assert.Single(f.Set.Entries));
        Assert.True(SpinWait.SpinUntil(() => second.Connection.IsDisposed, TimeSpan.FromSeconds(30)), "the retired member was not closed");
        Assert.False(first.Connection.IsDisposed);

        // MinMultiplexers is kept however long the last member idles.
        f.Tick((int)(MultiplexerScaler.ScaleInIdle / MultiplexerScaler.MaintenanceInterval) * 2);
        Assert.Single(f.Set.Entries);
    }

    [Fact]
    public async Task A_retired_member_closes_when_its_last_command_exits_not_before()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 2);
        var (first, second) = await TwoMembersAsync(f);
        MultiplexerSetFixture.Unload(first, MultiplexerScaler.SaturationOutstanding);
        second.Enter();

        var retired = f.Set.RetireAsync(second, "test");

        Assert.Same(second, await f.NextRemovedAsync());
        Assert.True(second.IsRetired);
        Assert.False(retired.IsCompleted);
        Assert.False(second.Connection.IsDisposed);

        second.Exit();
        await retired.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(second.Connection.IsDisposed);
    }

    [Fact]
    public async Task A_retired_member_whose_command_never_ends_is_closed_after_ShutdownGracePeriod()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 2);
        var (_, second) = await TwoMembersAsync(f);
        second.Enter();

        var retired = f.Set.RetireAsync(second, "test");
        f.Time.Advance(f.Options.ShutdownGracePeriod - TimeSpan.FromMilliseconds(1));
        Assert.False(retired.IsCompleted);

        f.Time.Advance(TimeSpan.FromMilliseconds(1));
        await retired.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(second.Connection.IsDisposed);
    }

    [Fact]
    public async Task A_member_whose_connection_closed_is_replaced_to_keep_MinMultiplexers()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 2, maxMultiplexers: 2);
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        var second = await f.NextAddedAsync();

        await first.Connection.DisposeAsync();
        f.Tick();
        Assert.Same(first, await f.NextRemovedAsync());

        f.Tick();
        var replacement = await f.NextAddedAsync();

        Assert.Equal(new[] { second, replacement }, f.Set.Entries);
        Assert.Equal(3, f.Connects);
        Assert.Equal(2, f.Budget.UsedBy(SocketRole.Multiplexer));
    }

    [Fact]
    public async Task A_backlog_on_a_member_picked_only_because_none_is_connected_adds_none()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 2, maxMultiplexers: 3);
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        var second = await f.NextAddedAsync();
        Assert.DoesNotContain(f.Set.Entries, e => e.IsConnected);
        using var metrics = new RedisPoolMetrics("scaler-tests", meterFactory: null, statistics: null, new RedisPoolOptions());
        var router = new CommandRouter("scaler-tests", new AdmissionLimiter("scaler-tests", 8, 8, TimeSpan.FromSeconds(1), f.Time, metrics), f.Set, metrics);

        // Commands pile up on the member the router falls back to while the server is away: the set is not too small.
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding);
        MultiplexerSetFixture.Load(second, MultiplexerScaler.SaturationOutstanding);
        Assert.True(router.TryRoute(-1, out var route));
        Assert.Same(first, route.Entry);
        router.Exit(route, failure: null);
        f.Time.Advance(MultiplexerScaler.SaturationPeriod);
        Assert.True(router.TryRoute(-1, out route));
        router.Exit(route, failure: null);

        Assert.Equal(2, f.Connects);
        Assert.Equal(2, f.Set.Count);
    }

    [Fact]
    public async Task Disposal_closes_a_retiring_member_whose_command_has_not_ended_and_ends_its_wait()
    {
        await using var f = new MultiplexerSetFixture(minMultiplexers: 1, maxMultiplexers: 2);
        var (_, second) = await TwoMembersAsync(f);
        second.Enter();
        var retired = f.Set.RetireAsync(second, "test");
        Assert.Same(second, await f.NextRemovedAsync());

        // The pool's grace period went to draining admission before the set is disposed: none is left to wait for.
        await f.Set.DisposeAsync();

        Assert.True(second.Connection.IsDisposed, "a retiring member outlived the set's disposal");
        await retired.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static async Task<(MultiplexerEntry First, MultiplexerEntry Second)> TwoMembersAsync(MultiplexerSetFixture f)
    {
        await f.Set.EnsureMinimumAsync(CancellationToken.None);
        var first = await f.NextAddedAsync();
        MultiplexerSetFixture.Load(first, MultiplexerScaler.SaturationOutstanding);
        f.Set.Scaler.NoteLoad(first);
        f.Time.Advance(MultiplexerScaler.SaturationPeriod);
        f.Set.Scaler.NoteLoad(first);
        return (first, await f.NextAddedAsync());
    }
}
