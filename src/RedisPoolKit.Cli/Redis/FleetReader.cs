using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit.Cli.Redis;

/// <summary>One registration in a fleet key: the instance id and when it expires, in the server's milliseconds.</summary>
internal sealed record FleetRegistration(string InstanceId, long ExpiresAtMs);

/// <summary>
/// One fleet key as read from the server holding it: <c>redispoolkit:fleet:{service:pool}</c>, its members and the
/// server's <c>TIME</c> read right after them.
/// </summary>
internal sealed record FleetKeySnapshot(string Endpoint, string Key, string Service, string Pool, long ServerTimeMs, IReadOnlyList<FleetRegistration> Registrations);

/// <summary>
/// Reads the fleet budget's registrations, read-only: <c>SCAN MATCH redispoolkit:fleet:*</c> with a bounded
/// <c>COUNT</c> on every master, plus the keys of every service and pool <c>CLIENT LIST</c> shows (so fleets that hold
/// sockets are read even where <c>SCAN</c> is refused or stopped early), then <c>ZRANGE ... WITHSCORES</c> and
/// <c>TIME</c> on the master that holds each key.
/// </summary>
internal static class FleetReader
{
    public const string KeyPrefix = "redispoolkit:fleet:";

    /// <summary>Keys each <c>SCAN</c> call looks at: small enough that no call holds the server up.</summary>
    public const int ScanCount = 1000;

    /// <summary><c>SCAN</c> calls per master before the tool stops looking (about a million keys).</summary>
    public const int MaxScanCalls = 1000;

    /// <summary>The key the library registers a service's pool on (the braces are a hash tag: one slot in a cluster).</summary>
    public static string KeyFor(string service, string pool) => $"{KeyPrefix}{{{service}:{pool}}}";

    /// <summary><c>redispoolkit:fleet:{service:pool}</c> → (service, pool); false for any other key.</summary>
    public static bool TryParseKey(string key, out string service, out string pool)
    {
        service = pool = string.Empty;
        if (!key.StartsWith(KeyPrefix + "{", StringComparison.Ordinal) || !key.EndsWith('}'))
        {
            return false;
        }

        var inner = key[(KeyPrefix.Length + 1)..^1];
        var colon = inner.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == inner.Length - 1 || inner.IndexOf(':', colon + 1) >= 0)
        {
            return false;
        }

        service = inner[..colon];
        pool = inner[(colon + 1)..];
        return true;
    }

    /// <summary>
    /// Every fleet key on the masters, with what could not be read in <paramref name="unseen"/> (endpoint, what).
    /// <paramref name="known"/> are the (service, pool) pairs <c>CLIENT LIST</c> showed; their keys are read directly.
    /// </summary>
    public static async Task<IReadOnlyList<FleetKeySnapshot>> ReadAsync(
        ConnectionMultiplexer multiplexer,
        IReadOnlyList<IServer> masters,
        IEnumerable<(string Service, string Pool)> known,
        List<(string Endpoint, Unseen Unseen)> unseen)
    {
        // Key → the master to read it on.
        var keys = new Dictionary<string, IServer>(StringComparer.Ordinal);
        foreach (var server in masters.Where(s => s.IsConnected))
        {
            foreach (var key in await ScanAsync(server, unseen))
            {
                keys.TryAdd(key, server);
            }
        }

        foreach (var (service, pool) in known.Distinct())
        {
            var key = KeyFor(service, pool);
            if (!keys.ContainsKey(key) && Owner(multiplexer, masters, key) is { } owner)
            {
                keys[key] = owner;
            }
        }

        var result = new List<FleetKeySnapshot>();
        foreach (var (key, server) in keys.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (TryParseKey(key, out var service, out var pool) && await ReadKeyAsync(server, key, service, pool, unseen) is { } snapshot)
            {
                result.Add(snapshot);
            }
        }

        return result;
    }

    private static IServer? Owner(ConnectionMultiplexer multiplexer, IReadOnlyList<IServer> masters, string key)
    {
        if (masters.Count == 1)
        {
            return masters[0];
        }

        try
        {
            var owner = multiplexer.GetServer((RedisKey)key);
            return masters.FirstOrDefault(m => RedisTarget.Format(m.EndPoint) == RedisTarget.Format(owner.EndPoint));
        }
        catch (Exception ex) when (ex is RedisException or ArgumentException or InvalidOperationException)
        {
            // The slot's owner is not among the connected masters (a topology change under way): read what SCAN found.
            return null;
        }
    }

    private static async Task<List<string>> ScanAsync(IServer server, List<(string Endpoint, Unseen Unseen)> unseen)
    {
        var endpoint = RedisTarget.Format(server.EndPoint);
        var what = $"SCAN MATCH {KeyPrefix}* COUNT {ScanCount}";
        var keys = new List<string>();
        var cursor = "0";
        try
        {
            for (var calls = 0; calls < MaxScanCalls; calls++)
            {
                var reply = (RedisResult[])(await server.ExecuteAsync(null, "SCAN", [cursor, "MATCH", KeyPrefix + "*", "COUNT", ScanCount]))!;
                cursor = reply[0].ToString();
                keys.AddRange(((RedisResult[])reply[1]!).Select(k => k.ToString()));
                if (cursor == "0")
                {
                    return keys;
                }
            }

            unseen.Add((endpoint, new Unseen(what, string.Create(CultureInfo.InvariantCulture, $"stopped after {MaxScanCalls} calls, before the end of the keyspace"), "fleets on this server whose pools hold no socket (fleets with sockets are read by their key)")));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            unseen.Add((endpoint, new Unseen(what, RedisTarget.FirstLine(ex.Message), "fleets whose pools hold no socket (fleets with sockets are read by their key)")));
        }

        return keys;
    }

    private static async Task<FleetKeySnapshot?> ReadKeyAsync(IServer server, string key, string service, string pool, List<(string Endpoint, Unseen Unseen)> unseen)
    {
        var endpoint = RedisTarget.Format(server.EndPoint);
        var what = $"ZRANGE {key} 0 -1 WITHSCORES";
        try
        {
            var members = await server.ExecuteAsync(null, "ZRANGE", [key, "0", "-1", "WITHSCORES"]);
            var registrations = ParseWithScores(members);
            if (registrations.Count == 0)
            {
                return null;
            }

            what = "TIME";
            var now = ParseTime(await server.ExecuteAsync("TIME"));
            return new FleetKeySnapshot(endpoint, key, service, pool, now, registrations);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            unseen.Add((endpoint, new Unseen(what, RedisTarget.FirstLine(ex.Message), $"the fleet registrations of {service}/{pool}")));
            return null;
        }
    }

    /// <summary>
    /// <c>ZRANGE ... WITHSCORES</c>: a flat member, score, member, score... array over RESP2, an array of [member, score]
    /// pairs over RESP3.
    /// </summary>
    public static IReadOnlyList<FleetRegistration> ParseWithScores(RedisResult reply)
    {
        var items = (RedisResult[]?)reply ?? [];
        var result = new List<FleetRegistration>();
        if (items.Length > 0 && items[0].Resp2Type == ResultType.Array)
        {
            foreach (var pair in items)
            {
                var parts = (RedisResult[])pair!;
                result.Add(new FleetRegistration(parts[0].ToString(), Score(parts[1])));
            }

            return result;
        }

        for (var i = 0; i + 1 < items.Length; i += 2)
        {
            result.Add(new FleetRegistration(items[i].ToString(), Score(items[i + 1])));
        }

        return result;
    }

    /// <summary><c>TIME</c>: [unix seconds, microseconds] → milliseconds.</summary>
    public static long ParseTime(RedisResult reply)
    {
        var parts = (RedisResult[])reply!;
        return (long.Parse(parts[0].ToString(), CultureInfo.InvariantCulture) * 1000) + (long.Parse(parts[1].ToString(), CultureInfo.InvariantCulture) / 1000);
    }

    private static long Score(RedisResult value) =>
        (long)double.Parse(value.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture);
}
