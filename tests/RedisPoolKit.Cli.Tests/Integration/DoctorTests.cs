using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

public sealed class DoctorTests
{
    [Fact]
    public async Task A_nearly_full_server_that_never_closes_idle_clients_is_critical()
    {
        const int MaxClients = 40;
        var options = new RedisServerOptions();
        foreach (var argument in (string[])["--maxclients", "40", "--timeout", "0"])
        {
            options.Arguments.Add(argument);
        }

        await using var server = await RedisServer.StartAsync(options);
        await using var raw = new RawClients(server);
        // The admin connection is one client; leave room for the tool's own connection(s).
        while (raw.Count < MaxClients - 4)
        {
            await raw.OpenAsync();
        }

        await RawClients.WaitAsync(server, c => c.Name.Length == 0, raw.Count, 1, "raw clients idle");

        var result = await Redispool.RunAsync("doctor", server.ConnectionString, "--long-idle", "1s", "--sample", "200ms", "--json");

        Assert.True(result.ExitCode == 2, result.ToString());
        var json = result.Json();
        Assert.Equal(2, json.GetProperty("exit_code").GetInt32());
        Assert.Equal("critical", json.GetProperty("status").GetString());
        var findings = json.GetProperty("findings").EnumerateArray().ToDictionary(f => f.GetProperty("code").GetString()!, f => f);
        Assert.Equal("critical", findings["utilization"].GetProperty("severity").GetString());
        Assert.Contains("of maxclients 40", findings["utilization"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Equal("warning", findings["timeout_zero"].GetProperty("severity").GetString());
        Assert.Contains("kill-idle", findings["timeout_zero"].GetProperty("fix").GetString(), StringComparison.Ordinal);
        Assert.Equal("warning", findings["unnamed_clients"].GetProperty("severity").GetString());
        // The server runs on this host: its open-file limit was read from /proc.
        Assert.Contains("fits the process's open-file limit", findings["file_limit"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.All(json.GetProperty("findings").EnumerateArray(), f => Assert.False(string.IsNullOrEmpty(f.GetProperty("fix").GetString())));
    }

    [Fact]
    public async Task A_healthy_server_exits_0_and_prints_its_status()
    {
        await using var server = await RedisServer.StartAsync();

        var result = await Redispool.RunAsync("doctor", server.ConnectionString, "--sample", "0s");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Status: ok (exit code 0)", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_is_a_critical_finding_with_exit_code_2()
    {
        await using var server = await RedisServer.StartAsync();
        var port = server.Port;
        await server.StopAsync();

        var result = await Redispool.RunAsync("doctor", $"127.0.0.1:{port},connectTimeout=2000", "--json");

        Assert.Equal(2, result.ExitCode);
        var finding = Assert.Single(result.Json().GetProperty("findings").EnumerateArray());
        Assert.Equal("unreachable", finding.GetProperty("code").GetString());
        Assert.Contains($"Could not connect to 127.0.0.1:{port}", finding.GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("abortConnect", finding.GetProperty("summary").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rejected_connections_during_the_sample_are_critical()
    {
        var options = new RedisServerOptions();
        options.Arguments.Add("--maxclients");
        options.Arguments.Add("8");
        await using var server = await RedisServer.StartAsync(options);
        await using var raw = new RawClients(server);
        using var stop = new CancellationTokenSource();
        var doctor = Redispool.RunAsync("doctor", server.ConnectionString, "--sample", "3s", "--json");
        // Once the tool is connected, fill the server and keep knocking: each extra socket is rejected.
        await RawClients.WaitAsync(server, c => c.Name.StartsWith("redispool-cli-", StringComparison.Ordinal), 1, 0, "the doctor connected");
        for (var i = 0; i < 8; i++)
        {
            await raw.OpenAsync();
        }

        var knocking = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await server.ConnectRawAsync();
                await Task.Delay(20);
            }
        });

        var result = await doctor;
        await stop.CancelAsync();
        await knocking;

        var findings = result.Json().GetProperty("findings").EnumerateArray().ToList();
        Assert.Contains(findings, f => f.GetProperty("code").GetString() == "rejecting" && f.GetProperty("severity").GetString() == "critical");
        Assert.Equal(2, result.ExitCode);
    }
}
