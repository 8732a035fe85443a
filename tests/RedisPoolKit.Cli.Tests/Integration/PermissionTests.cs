using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

public sealed class PermissionTests
{
    [Fact]
    public async Task A_user_without_CLIENT_LIST_and_CONFIG_gets_a_partial_report_naming_what_it_could_not_see()
    {
        await using var server = await RedisServer.StartAsync();
        await server.Admin.GetServer(server.EndPoint).ExecuteAsync("ACL", "SETUSER", "ops", "on", ">ops-secret", "~*", "&*", "+@all", "-client|list", "-config");
        var configuration = $"{server.ConnectionString},user=ops,password=ops-secret";

        var json = await Redispool.RunAsync("inspect", configuration, "--json");
        var human = await Redispool.RunAsync("inspect", configuration);
        var doctor = await Redispool.RunAsync("doctor", configuration, "--sample", "0s", "--json");

        Assert.True(json.ExitCode == 0, json.ToString());
        var report = json.Json();
        var unseen = report.GetProperty("unseen").EnumerateArray().ToDictionary(u => u.GetProperty("what").GetString()!, u => u.GetProperty("reason").GetString()!);
        Assert.Contains("NOPERM", unseen["CLIENT LIST"], StringComparison.Ordinal);
        Assert.Contains("CONFIG GET timeout", unseen.Keys);
        Assert.True(report.GetProperty("connected_clients").GetInt64() >= 1, "INFO is still allowed");
        Assert.Equal(10000, report.GetProperty("maxclients").GetInt64());
        Assert.Equal(0, report.GetProperty("services").GetArrayLength());

        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("Not visible with this connection (partial report)", human.Output, StringComparison.Ordinal);
        Assert.Contains("CLIENT LIST: NOPERM", human.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", human.Output + human.Error, StringComparison.Ordinal);

        var kill = await Redispool.RunAsync("kill-idle", configuration, "--idle", "1s");
        Assert.Equal(2, kill.ExitCode);
        Assert.Contains("CLIENT LIST was refused", kill.Output, StringComparison.Ordinal);

        Assert.True(doctor.ExitCode is 0 or 1, doctor.ToString());
        Assert.Contains(doctor.Json().GetProperty("unseen").EnumerateArray(), u => u.GetProperty("what").GetString() == "CLIENT LIST");
    }

    [Fact]
    public async Task A_server_with_CONFIG_renamed_away_still_gets_a_doctor_report()
    {
        var options = new RedisServerOptions();
        foreach (var argument in (string[])["--rename-command", "CONFIG", ""])
        {
            options.Arguments.Add(argument);
        }

        await using var server = await RedisServer.StartAsync(options);

        var result = await Redispool.RunAsync("doctor", server.ConnectionString, "--sample", "0s", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var unseen = result.Json().GetProperty("unseen").EnumerateArray().Select(u => u.GetProperty("what").GetString()).ToList();
        Assert.Contains("CONFIG GET timeout", unseen);
        Assert.Contains("CONFIG GET tcp-keepalive", unseen);
    }

    [Fact]
    public async Task A_user_that_may_not_complete_the_handshake_is_told_which_commands_it_needs()
    {
        await using var server = await RedisServer.StartAsync();
        // A read-only user as some setups define it: no @connection category, so no ECHO.
        await server.Admin.GetServer(server.EndPoint).ExecuteAsync("ACL", "SETUSER", "reader", "on", ">reader-secret", "~*", "+@read", "+info", "+hello", "+auth", "+ping");

        var result = await Redispool.RunAsync("inspect", $"{server.ConnectionString},user=reader,password=reader-secret");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("handshake failed", result.Error, StringComparison.Ordinal);
        Assert.Contains("ECHO", result.Error, StringComparison.Ordinal);
    }
}
