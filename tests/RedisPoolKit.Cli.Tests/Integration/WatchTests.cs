using System.Text.Json;
using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

public sealed class WatchTests
{
    [Fact]
    public async Task Writes_one_json_line_per_sample_until_the_duration_ends()
    {
        await using var server = await RedisServer.StartAsync();
        await using var pool = new RedisPool(new RedisPoolOptions { Name = "cache", ServiceName = "orders", Configuration = server.ConnectionString });
        await pool.ConnectAsync();

        var result = await Redispool.RunAsync("watch", server.ConnectionString, "--interval", "100ms", "--duration", "3s", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // One sample per interval, with room for a busy machine: a sample that takes longer delays the next one.
        Assert.InRange(lines.Length, 2, 31);
        foreach (var line in lines)
        {
            using var sample = JsonDocument.Parse(line);
            var root = sample.RootElement;
            Assert.Equal(10000, root.GetProperty("maxclients").GetInt64());
            Assert.True(root.GetProperty("connected_clients").GetInt64() >= 2);
            var s = Assert.Single(root.GetProperty("servers").EnumerateArray());
            Assert.Contains(s.GetProperty("top_services").EnumerateArray(), t => t.GetProperty("name").GetString() == "orders" && t.GetProperty("kind").GetString() == "service");
        }

        using var last = JsonDocument.Parse(lines[^1]);
        Assert.Equal(0, last.RootElement.GetProperty("servers")[0].GetProperty("rejected_per_second").GetDouble());
    }

    [Fact]
    public async Task Writes_plain_lines_when_the_output_is_not_a_terminal()
    {
        await using var server = await RedisServer.StartAsync();

        var result = await Redispool.RunAsync("watch", server.ConnectionString, "--interval", "100ms", "--duration", "250ms");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"127.0.0.1:{server.Port} connected", result.Output, StringComparison.Ordinal);
    }
}
