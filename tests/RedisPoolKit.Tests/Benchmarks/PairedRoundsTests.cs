using RedisPoolKit.LoadTests;

namespace RedisPoolKit.Tests.Benchmarks;

public class PairedRoundsTests
{
    [Fact]
    public void Schedule_alternates_the_first_side_every_pair()
    {
        var schedule = PairedRounds.Schedule(4);

        Assert.Equal(
            [
                (0, PairSide.Baseline), (0, PairSide.Candidate),
                (1, PairSide.Candidate), (1, PairSide.Baseline),
                (2, PairSide.Baseline), (2, PairSide.Candidate),
                (3, PairSide.Candidate), (3, PairSide.Baseline),
            ],
            schedule);
    }

    [Fact]
    public void Over_an_even_number_of_pairs_both_sides_sit_at_the_same_mean_position()
    {
        // Equal mean positions are what make a steady drift in the machine's speed cost both sides the same.
        var schedule = PairedRounds.Schedule(6);

        var baseline = schedule.Select((window, position) => (window, position)).Where(w => w.window.Side == PairSide.Baseline).Sum(w => w.position);
        var candidate = schedule.Select((window, position) => (window, position)).Where(w => w.window.Side == PairSide.Candidate).Sum(w => w.position);

        Assert.Equal(baseline, candidate);
    }

    [Fact]
    public void Ratios_are_candidate_over_baseline_pair_by_pair()
    {
        var ratios = PairedRounds.Ratios([100, 200, 50], [90, 220, 50]);

        Assert.Equal([0.9, 1.1, 1.0], ratios.Select(r => Math.Round(r, 6)));
    }

    [Fact]
    public void Ratios_refuse_a_pair_missing_one_side()
    {
        Assert.Throws<ArgumentException>(() => PairedRounds.Ratios([100, 200], [90]));
    }

    [Fact]
    public void The_median_ignores_one_pair_a_neighbour_landed_on()
    {
        // Their mean would be 0.82: one window a build landed on drags it below a 0.90 floor.
        var summary = PairedRounds.Summarize([0.95, 0.93, 0.31, 0.97, 0.94]);

        Assert.Equal(0.94, summary.Median);
        Assert.Equal(0.31, summary.Min);
        Assert.Equal(0.97, summary.Max);
    }

    [Fact]
    public void The_median_of_an_even_count_is_the_mean_of_the_middle_two()
    {
        var summary = PairedRounds.Summarize([1.2, 0.8, 0.9, 1.0]);

        Assert.Equal(0.95, summary.Median, 10);
    }

    [Fact]
    public void Summarize_refuses_no_pairs()
    {
        Assert.Throws<ArgumentException>(() => PairedRounds.Summarize([]));
    }
}
