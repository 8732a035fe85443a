using RedisPoolKit.Cli.Commands;
using RedisPoolKit.Cli.Tests.Infrastructure;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class BudgetTests
{
    [Fact]
    public void Keeps_a_doubled_fleet_under_80_percent()
    {
        var report = BudgetCommand.Calculate(new BudgetInput(MaxClients: 10_000, Instances: 50));

        // 80 % of 10 000 = 8000 sockets for 100 instances at the surge.
        Assert.True(report.Fits);
        Assert.Equal(80, report.MaxConnections);
        Assert.Equal(8000, report.UsableSockets);
        Assert.Equal(100, report.InstancesAtSurge);
        Assert.Equal(4000, report.SocketsSteady);
        Assert.Equal(8000, report.SocketsAtSurge);
        Assert.Equal(0.4, report.UtilizationSteady, 6);
        Assert.Equal(0.8, report.UtilizationAtSurge, 6);
    }

    [Fact]
    public void Splits_the_room_between_pools_and_leaves_reserved_sockets_out()
    {
        var report = BudgetCommand.Calculate(new BudgetInput(MaxClients: 1000, Instances: 12, Pools: 2, Surge: 1.25, Headroom: 0.1, Reserved: 20));

        // floor(1000 * 0.9) - 20 = 880; ceil(12 * 1.25) = 15 instances x 2 pools = 30 → 29 each (870 sockets).
        Assert.Equal(880, report.UsableSockets);
        Assert.Equal(15, report.InstancesAtSurge);
        Assert.Equal(29, report.MaxConnections);
        Assert.Equal(870, report.SocketsAtSurge);
        Assert.True((870 + 20) / 1000.0 <= 0.9);
    }

    [Fact]
    public void Says_what_to_raise_when_the_fleet_cannot_fit()
    {
        var report = BudgetCommand.Calculate(new BudgetInput(MaxClients: 100, Instances: 100));

        Assert.False(report.Fits);
        Assert.Equal(0, report.MaxConnections);
        Assert.Null(report.Appsettings);
        // 200 instances at the surge need 200 sockets: 250 maxclients keep them under 80 %.
        Assert.Contains("Raise maxclients to at least 250", report.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prints_an_appsettings_snippet_that_binds_MaxConnections()
    {
        var result = await Redispool.RunAsync("budget", "--maxclients", "10000", "--instances", "50", "--json");

        Assert.Equal(0, result.ExitCode);
        var json = result.Json();
        Assert.Equal(80, json.GetProperty("max_connections").GetInt32());
        Assert.Equal(10000, json.GetProperty("maxclients").GetInt64());
        using var snippet = System.Text.Json.JsonDocument.Parse(json.GetProperty("appsettings").GetString()!);
        Assert.Equal(80, snippet.RootElement.GetProperty("Redis").GetProperty("Pools").GetProperty("default").GetProperty("MaxConnections").GetInt32());
    }

    [Fact]
    public async Task Human_output_has_the_number_and_the_snippet_and_a_fleet_too_large_exits_2()
    {
        var fits = await Redispool.RunAsync("budget", "--maxclients", "10000", "--instances", "50");
        var tooLarge = await Redispool.RunAsync("budget", "--maxclients", "100", "--instances", "100");

        Assert.Equal(0, fits.ExitCode);
        Assert.Contains("\"MaxConnections\": 80", fits.Output, StringComparison.Ordinal);
        Assert.Equal(2, tooLarge.ExitCode);
        Assert.Contains("Does not fit", tooLarge.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--headroom", "1.0")]
    [InlineData("--surge", "0.5")]
    [InlineData("--instances", "0")]
    public async Task Refuses_values_that_make_no_sense_with_exit_code_2(string option, string value)
    {
        string[] args = ["budget", "--maxclients", "1000", "--instances", "10", option, value];

        var result = await Redispool.RunAsync(args);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(option, result.Error, StringComparison.Ordinal);
    }
}
