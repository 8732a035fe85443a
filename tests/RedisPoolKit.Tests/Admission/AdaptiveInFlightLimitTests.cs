using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Admission;

public sealed class AdaptiveInFlightLimitTests
{
    private const double BaselineMs = 0.2;

    private readonly FakeTimeProvider _time = new();

    private AdaptiveInFlightLimit Create(int floor = 16, int ceiling = 1024) => new(floor, ceiling, _time);

    /// <summary>One window: its length passes, then its samples complete with <paramref name="latencyMs"/> at <paramref name="inFlight"/>.</summary>
    private void Window(AdaptiveInFlightLimit limit, double latencyMs, int? inFlight = null)
    {
        _time.Advance(AdaptiveInFlightLimit.Window);
        var ticks = (long)(latencyMs / 1000 * _time.TimestampFrequency);
        for (var i = 0; i < AdaptiveInFlightLimit.MinSamples; i++)
        {
            limit.Complete(_time.GetTimestamp() - ticks, inFlight ?? limit.Limit);
        }
    }

    private AdaptiveInFlightLimit ShrunkToFloor()
    {
        var limit = Create();
        Window(limit, BaselineMs);
        while (limit.Limit > limit.Floor)
        {
            Window(limit, 50);
        }

        return limit;
    }

    [Fact]
    public void Starts_at_the_ceiling_with_no_baseline()
    {
        var limit = Create();

        Assert.Equal(1024, limit.Limit);
        Assert.Null(limit.Baseline);
    }

    [Fact]
    public void Learns_the_baseline_from_the_lowest_window_mean()
    {
        var limit = Create();

        Window(limit, 0.5);
        Window(limit, BaselineMs);
        Window(limit, 0.3);

        Assert.Equal(BaselineMs, limit.Baseline!.Value.TotalMilliseconds, precision: 3);
    }

    [Fact]
    public void A_window_closes_only_after_its_length_and_its_minimum_samples()
    {
        var limit = Create();
        Window(limit, BaselineMs);
        var ticks = (long)(50.0 / 1000 * _time.TimestampFrequency);

        // Many slow samples, but the window is not yet long enough.
        for (var i = 0; i < 100; i++)
        {
            limit.Complete(_time.GetTimestamp() - ticks, 1024);
        }

        Assert.Equal(1024, limit.Limit);

        // Long enough now: the next sample closes the window, the 100 above included.
        _time.Advance(AdaptiveInFlightLimit.Window);
        limit.Complete(_time.GetTimestamp() - ticks, 1024);
        Assert.Equal(512, limit.Limit);
    }

    [Fact]
    public void Shrinks_by_at_most_half_a_window_when_queueing_delay_appears()
    {
        var limit = Create();
        Window(limit, BaselineMs);

        Window(limit, 50);
        Assert.Equal(512, limit.Limit);

        // 2.75 ms against a target of baseline + 2 ms (2.2 ms): in proportion, 512 × 2.2 / 2.75.
        Window(limit, 2.75);
        Assert.Equal(409, limit.Limit);
        Assert.Equal(2, limit.Decreases);
    }

    [Fact]
    public void Never_goes_below_the_floor()
    {
        var limit = ShrunkToFloor();

        for (var i = 0; i < 20; i++)
        {
            Window(limit, 500);
        }

        Assert.Equal(16, limit.Limit);
    }

    [Fact]
    public void Grows_by_its_square_root_while_latency_stays_near_the_baseline()
    {
        var limit = ShrunkToFloor();

        Window(limit, BaselineMs);
        Assert.Equal(20, limit.Limit);
        Window(limit, BaselineMs * 10);
        Assert.Equal(24, limit.Limit);
    }

    [Fact]
    public void Delays_within_the_allowance_do_not_shrink_a_pipelined_limit()
    {
        var limit = Create();
        Window(limit, 0.1);

        // Batching on a busy multiplexer: 19x the baseline, but under two milliseconds of queueing delay.
        for (var i = 0; i < 10; i++)
        {
            Window(limit, 1.9);
        }

        Assert.Equal(1024, limit.Limit);
        Assert.Equal(0, limit.Decreases);
    }

    [Fact]
    public void Does_not_grow_while_the_pool_uses_less_than_half_of_it()
    {
        var limit = ShrunkToFloor();

        for (var i = 0; i < 10; i++)
        {
            Window(limit, BaselineMs, inFlight: 7);
        }

        Assert.Equal(16, limit.Limit);
        Window(limit, BaselineMs, inFlight: 8);
        Assert.Equal(20, limit.Limit);
    }

    [Fact]
    public void Recovers_to_the_ceiling_and_never_passes_it()
    {
        var limit = ShrunkToFloor();

        var windows = 0;
        while (limit.Limit < limit.Ceiling)
        {
            Window(limit, BaselineMs);
            windows++;
            Assert.True(windows <= 60, $"Still at {limit.Limit} after {windows} windows.");
        }

        for (var i = 0; i < 10; i++)
        {
            Window(limit, BaselineMs);
        }

        Assert.Equal(1024, limit.Limit);
    }

    [Fact]
    public void A_lasting_latency_change_becomes_the_baseline_within_two_epochs()
    {
        var limit = Create();
        Window(limit, BaselineMs);

        // The server moved farther away: 5 ms from now on. The limit falls to the floor, then the old minimum ages out.
        var elapsed = TimeSpan.Zero;
        while (limit.Baseline!.Value.TotalMilliseconds < 5)
        {
            Window(limit, 5);
            elapsed += AdaptiveInFlightLimit.Window;
            Assert.True(elapsed <= 2 * AdaptiveInFlightLimit.BaselineEpoch, $"Baseline still {limit.Baseline} after {elapsed}.");
        }

        Assert.True(elapsed > AdaptiveInFlightLimit.BaselineEpoch, "A sustained rise must not be learned within one epoch.");
        var before = limit.Limit;
        Window(limit, 5);
        Assert.True(limit.Limit > before, $"At the new baseline the limit grows again (was {before}, now {limit.Limit}).");
    }

    [Fact]
    public void A_fixed_limit_never_moves()
    {
        var limit = Create(floor: 64, ceiling: 64);

        Window(limit, BaselineMs);
        Window(limit, 500);

        Assert.Equal(64, limit.Limit);
        Assert.Equal(0, limit.Decreases);
    }
}
