using RedisPoolKit.Cli.Tests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Cli.Tests.Integration;

public sealed class KillIdleTests : IAsyncLifetime
{
    private RedisServer _server = null!;
    private RawClients _raw = null!;

    public async Task InitializeAsync()
    {
        _server = await RedisServer.StartAsync();
        _raw = new RawClients(_server);
        for (var i = 0; i < 5; i++)
        {
            await _raw.OpenAsync("CLIENT", "SETNAME", $"orders:pod-1:queue:lease{i}");
        }

        await _raw.OpenAsync("CLIENT", "SETNAME", "orders:pod-1:queue:mux0");
        await _raw.OpenAsync("CLIENT", "SETNAME", "billing:pod-1:queue:lease0");
        await _raw.OpenAsync("SUBSCRIBE", "orders-events");
        await _raw.OpenAsync("BLPOP", "orders-jobs", "0");
        await RawClients.WaitAsync(_server, c => c.Name.Length > 0 && c.Name != RedisServer.AdminClientName, 7, 1, "named sockets idle");
        await RawClients.WaitAsync(_server, c => c.Name.Length == 0 && (c.Flags.Contains('P', StringComparison.Ordinal) || c.Flags.Contains('b', StringComparison.Ordinal)), 2, 1, "pub/sub and blocked sockets idle");
    }

    public async Task DisposeAsync()
    {
        await _raw.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task<HashSet<long>> IdsAsync() => [.. (await _server.ClientListAsync()).Select(c => c.Id)];

    [Fact]
    public async Task Without_yes_closes_nothing_and_with_yes_closes_exactly_the_listed_clients()
    {
        var before = await IdsAsync();

        var dry = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "1s", "--service", "orders", "--role", "lease", "--max", "3", "--json");

        Assert.True(dry.ExitCode == 0, dry.ToString());
        var dryJson = dry.Json();
        Assert.True(dryJson.GetProperty("dry_run").GetBoolean());
        Assert.Equal(0, dryJson.GetProperty("killed").GetInt32());
        var candidates = dryJson.GetProperty("candidates").EnumerateArray().ToList();
        Assert.Equal(3, candidates.Count);
        Assert.All(candidates, c => Assert.StartsWith("orders:pod-1:queue:lease", c.GetProperty("name").GetString(), StringComparison.Ordinal));
        Assert.Equal(2, dryJson.GetProperty("skipped").GetProperty("over_max").GetInt32());
        Assert.Superset(before, await IdsAsync());

        var wet = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "1s", "--service", "orders", "--role", "lease", "--max", "3", "--yes", "--json");

        Assert.True(wet.ExitCode == 0, wet.ToString());
        var wetJson = wet.Json();
        var killed = wetJson.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("id").GetInt64()).ToHashSet();
        Assert.Equal(3, killed.Count);
        Assert.Equal(3, wetJson.GetProperty("killed").GetInt32());
        Assert.All(wetJson.GetProperty("candidates").EnumerateArray(), c => Assert.True(c.GetProperty("killed").GetBoolean()));
        var after = await IdsAsync();
        Assert.Empty(after.Intersect(killed));
        Assert.Equal(before.Except(killed).Order(), after.Where(before.Contains).Order());
    }

    [Fact]
    public async Task Never_closes_its_own_connection_pubsub_or_blocked_clients_unless_asked()
    {
        var before = await _server.ClientListAsync();
        var pubsub = before.Single(c => c.Name.Length == 0 && c.Flags.Contains('P', StringComparison.Ordinal)).Id;
        var blocked = before.Single(c => c.Flags.Contains('b', StringComparison.Ordinal)).Id;

        var all = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "0s", "--max", "100", "--yes", "--json");

        Assert.True(all.ExitCode == 0, all.ToString());
        var json = all.Json();
        var skipped = json.GetProperty("skipped");
        Assert.True(skipped.GetProperty("own_connection").GetInt32() >= 1);
        Assert.True(skipped.GetProperty("pub_sub").GetInt32() >= 1);
        Assert.Equal(1, skipped.GetProperty("blocked").GetInt32());
        var candidates = json.GetProperty("candidates").EnumerateArray().ToList();
        Assert.DoesNotContain(candidates, c => c.GetProperty("name").GetString()!.StartsWith("redispool-cli-", StringComparison.Ordinal));
        Assert.DoesNotContain(candidates, c => c.GetProperty("id").GetInt64() == pubsub || c.GetProperty("id").GetInt64() == blocked);
        Assert.All(candidates, c => Assert.True(c.GetProperty("killed").GetBoolean()));
        var after = (await _server.ClientListAsync()).Select(c => c.Id).ToHashSet();
        Assert.Contains(pubsub, after);
        Assert.Contains(blocked, after);
        Assert.DoesNotContain(before, c => c.Name.StartsWith("orders:", StringComparison.Ordinal) && after.Contains(c.Id));

        var withBlocked = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "1s", "--unnamed", "--include-blocked", "--include-pubsub", "--yes", "--json");

        Assert.True(withBlocked.ExitCode == 0, withBlocked.ToString());
        var left = (await _server.ClientListAsync()).Select(c => c.Id).ToHashSet();
        Assert.DoesNotContain(pubsub, left);
        Assert.DoesNotContain(blocked, left);
    }

    [Fact]
    public async Task Prints_the_clients_it_would_close_and_why()
    {
        var result = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "1s", "--unnamed");
        var named = await Redispool.RunAsync("kill-idle", _server.ConnectionString, "--idle", "1s", "--pool", "queue");

        Assert.True(named.ExitCode == 0, named.ToString());
        Assert.Contains("Dry run: nothing was closed", named.Output, StringComparison.Ordinal);
        Assert.Contains("orders:pod-1:queue:lease0", named.Output, StringComparison.Ordinal);
        Assert.Contains("idle", named.Output, StringComparison.Ordinal);
        Assert.Contains("pool queue", named.Output, StringComparison.Ordinal);
        Assert.Contains("Kept: 1 pub/sub", result.Output, StringComparison.Ordinal);
    }
}
