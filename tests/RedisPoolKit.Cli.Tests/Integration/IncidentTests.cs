using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

/// <summary>The moments an operator reaches for the tool: a server with one slot left, a full one, a replica's endpoint.</summary>
public sealed class IncidentTests
{
    private static async Task<int> ListedAsync(RedisServer server) => (await server.ClientListAsync()).Count;

    [Fact]
    public async Task Inspect_works_on_a_server_with_a_single_free_connection_slot()
    {
        await using var server = await RedisServer.StartAsync();
        await using var raw = new RawClients(server);
        for (var i = 0; i < 5; i++)
        {
            await raw.OpenAsync();
        }

        // Redis accepts a connection while it lists fewer clients than maxclients: exactly one more fits.
        await server.ConfigSetAsync("maxclients", (await ListedAsync(server) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));

        var result = await Redispool.RunAsync("inspect", server.ConnectionString, "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("critical", result.Json().GetProperty("level").GetString());
        Assert.Equal("0", (await server.InfoAsync("stats"))["rejected_connections"]);
    }

    [Fact]
    public async Task A_full_server_is_reported_as_full_not_as_unreachable()
    {
        await using var server = await RedisServer.StartAsync();
        await using var raw = new RawClients(server);
        await raw.OpenAsync();
        await server.ConfigSetAsync("maxclients", (await ListedAsync(server)).ToString(System.Globalization.CultureInfo.InvariantCulture));

        var inspect = await Redispool.RunAsync("inspect", server.ConnectionString);
        var doctor = await Redispool.RunAsync("doctor", server.ConnectionString, "--sample", "0s", "--json");

        Assert.True(inspect.ExitCode == 2, inspect.ToString());
        Assert.Contains("max number of clients reached", inspect.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", inspect.Error, StringComparison.Ordinal);
        Assert.Equal(2, doctor.ExitCode);
        var finding = Assert.Single(doctor.Json().GetProperty("findings").EnumerateArray());
        Assert.Contains("max number of clients reached", finding.GetProperty("summary").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replica_endpoint_is_read_not_reported_empty_and_healthy()
    {
        await using var master = await RedisServer.StartAsync();
        var options = new RedisServerOptions();
        foreach (var argument in (string[])["--replicaof", "127.0.0.1", master.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--maxclients", "200"])
        {
            options.Arguments.Add(argument);
        }

        await using var replica = await RedisServer.StartAsync(options);
        await using var raw = new RawClients(replica);
        for (var i = 0; i < 9; i++)
        {
            await raw.OpenAsync("CLIENT", "SETNAME", $"reports:pod-{i}:default:mux0");
        }

        await RawClients.WaitAsync(replica, c => c.Name.StartsWith("reports:", StringComparison.Ordinal), 9, 0, "the named sockets are listed");
        var linked = System.Diagnostics.Stopwatch.StartNew();
        while ((await replica.InfoAsync("replication")).GetValueOrDefault("master_link_status") != "up")
        {
            Assert.True(linked.Elapsed < TimeSpan.FromSeconds(60), "the replica never linked to its master");
            await Task.Delay(50);
        }

        var inspect = await Redispool.RunAsync("inspect", replica.ConnectionString, "--json");
        var doctor = await Redispool.RunAsync("doctor", replica.ConnectionString, "--sample", "0s", "--json");
        var kill = await Redispool.RunAsync("kill-idle", replica.ConnectionString, "--idle", "0s", "--max", "100", "--json");

        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var report = inspect.Json();
        Assert.Equal(200, report.GetProperty("maxclients").GetInt64());
        Assert.Equal($"127.0.0.1:{replica.Port}", report.GetProperty("endpoint").GetString());
        Assert.Equal(9, report.GetProperty("services")[0].GetProperty("connections").GetInt32());
        Assert.True(doctor.ExitCode is 0 or 1, doctor.ToString());
        Assert.Contains(doctor.Json().GetProperty("findings").EnumerateArray(), f => f.GetProperty("code").GetString() == "file_limit" && f.GetProperty("endpoint").GetString() == $"127.0.0.1:{replica.Port}");
        // The replica's link to its master is listed on the replica (flag M) and is never a candidate.
        Assert.True(kill.ExitCode == 0, kill.ToString());
        var candidates = kill.Json().GetProperty("candidates").EnumerateArray().ToList();
        Assert.Equal(9, candidates.Count(c => c.GetProperty("name").GetString()!.StartsWith("reports:", StringComparison.Ordinal)));
        Assert.DoesNotContain(candidates, c => c.GetProperty("flags").GetString()!.Contains('M', StringComparison.Ordinal));
        Assert.Equal(1, kill.Json().GetProperty("skipped").GetProperty("replication").GetInt32());
    }
}
