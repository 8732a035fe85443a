using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Leases;

public sealed class LeaseClockTests
{
    [Fact]
    public void The_system_provider_gets_the_coarse_millisecond_clock_and_its_resolution()
    {
        var clock = new LeaseClock(TimeProvider.System);

        Assert.Equal(TimeSpan.FromMilliseconds(16), clock.Resolution);
        Assert.Equal(1_500, clock.ToTimestamps(TimeSpan.FromSeconds(1.5)));
        Assert.Equal(TimeSpan.FromSeconds(1.5), clock.Elapsed(10_000, 11_500));
        var tickCount = Environment.TickCount64;
        Assert.InRange(clock.Now, tickCount, tickCount + 1_000);
    }

    [Fact]
    public void Any_other_provider_is_read_exactly()
    {
        var time = new FakeTimeProvider();
        var clock = new LeaseClock(time);
        var start = clock.Now;

        time.Advance(TimeSpan.FromTicks(12_345));

        Assert.Equal(TimeSpan.Zero, clock.Resolution);
        Assert.Equal(time.GetTimestamp(), clock.Now);
        Assert.Equal(TimeSpan.FromTicks(12_345), clock.ElapsedSince(start));
        Assert.Equal(time.TimestampFrequency, clock.ToTimestamps(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Durations_past_any_clock_range_are_capped_instead_of_overflowing()
    {
        var clock = new LeaseClock(new FakeTimeProvider());

        var capped = clock.ToTimestamps(TimeSpan.MaxValue);

        Assert.InRange(capped, long.MaxValue / 8, long.MaxValue / 2);
        Assert.True(checked(clock.Now + capped + capped) > clock.Now);
    }
}
