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

public class GateStatisticsTests
{
    private static readonly GateLimits Limits = new(MaxExtraBytesPerOp: 200, MaxCpuRatio: 1.5, MinOpsRatio: 0.5);

    [Fact]
    public void Differences_are_candidate_minus_baseline_pair_by_pair()
    {
        Assert.Equal([136.0, -4.0], PairedRounds.Differences([377, 380], [513, 376]));
    }

    [Fact]
    public void Differences_refuse_a_pair_missing_one_side()
    {
        Assert.Throws<ArgumentException>(() => PairedRounds.Differences([1, 2], [1]));
    }

    [Fact]
    public void A_slow_neighbour_halving_every_pool_window_passes_while_its_costs_per_command_hold()
    {
        // Throughput moved by noise alone: the pool's windows all landed on a busy neighbour.
        var statistics = GateStatistics.Of(
            [new(100_000, 377, 4.5), new(100_000, 377, 4.6), new(100_000, 378, 4.4)],
            [new(55_000, 513, 4.9), new(51_000, 514, 5.0), new(60_000, 512, 4.8)]);

        Assert.Empty(statistics.Violations(Limits));
        Assert.Equal(136, statistics.ExtraBytesPerOp.Median);
    }

    [Fact]
    public void Allocating_more_per_command_than_the_limit_fails_and_names_the_limit()
    {
        var statistics = GateStatistics.Of(
            [new(100_000, 377, 4.5), new(100_000, 377, 4.5), new(100_000, 377, 4.5)],
            [new(100_000, 600, 4.5), new(100_000, 601, 4.5), new(100_000, 100, 4.5)]);

        var violation = Assert.Single(statistics.Violations(Limits));
        Assert.Contains(GateLimits.ExtraBytesName, violation, StringComparison.Ordinal);
    }

    [Fact]
    public void Spending_more_cpu_per_command_than_the_limit_fails_and_names_the_limit()
    {
        var statistics = GateStatistics.Of(
            [new(100_000, 377, 4.0), new(100_000, 377, 4.0), new(100_000, 377, 4.0)],
            [new(100_000, 400, 8.0), new(100_000, 400, 7.0), new(100_000, 400, 3.0)]);

        var violation = Assert.Single(statistics.Violations(Limits));
        Assert.Contains(GateLimits.CpuRatioName, violation, StringComparison.Ordinal);
        Assert.Equal(1.75, statistics.CpuRatio.Median, 10);
    }

    [Fact]
    public void A_collapse_of_throughput_fails_on_the_ops_floor()
    {
        var statistics = GateStatistics.Of(
            [new(100_000, 377, 4.0), new(100_000, 377, 4.0), new(100_000, 377, 4.0)],
            [new(30_000, 400, 4.0), new(40_000, 400, 4.0), new(100_000, 400, 4.0)]);

        var violation = Assert.Single(statistics.Violations(Limits));
        Assert.Contains(GateLimits.OpsRatioName, violation, StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_parse_name_value_lines_and_ignore_comments()
    {
        var limits = GateLimits.Parse("""
            # the gate
            max-extra-bytes-per-command 190   # B
            max-cpu-per-command-ratio 1.4
            min-ops-ratio 0.5
            """);

        Assert.Equal(new GateLimits(190, 1.4, 0.5), limits);
    }

    [Theory]
    [InlineData("max-extra-bytes-per-command 190\nmax-cpu-per-command-ratio 1.4", "min-ops-ratio")]
    [InlineData("max-extra-bytes-per-command 190\nmax-cpu-per-command-ratio 1.4\nmin-ops-ratio 0.5\nfloor 0.8", "floor 0.8")]
    [InlineData("max-extra-bytes-per-command -1\nmax-cpu-per-command-ratio 1.4\nmin-ops-ratio 0.5", "max-extra-bytes-per-command -1")]
    public void Limits_name_the_line_or_limit_that_is_wrong(string text, string named)
    {
        var error = Assert.Throws<FormatException>(() => GateLimits.Parse(text));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
