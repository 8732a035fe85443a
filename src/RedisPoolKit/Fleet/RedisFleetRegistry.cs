using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The fleet's registrations on the server: one sorted set per service and pool, instance id → expiry in the
/// server's own clock (milliseconds). Plain data commands (ZADD, ZREMRANGEBYSCORE, ZRANGE, PEXPIRE, TIME) in one
/// MULTI/EXEC, over a socket the pool already holds: no admin permission and no extra socket.
/// </summary>
/// <remarks>
/// Scores are server time, so a wrong wall clock on an instance does not matter: each heartbeat's transaction ends with
/// <c>TIME</c>, and the next one estimates the server's clock from that reading plus the instance's monotonic clock.
/// The estimate is off by at most one round trip plus the drift of a monotonic clock over one interval.
/// </remarks>
internal sealed class RedisFleetRegistry : IFleetRegistry
{
    private readonly Func<IDatabase?> _database;
    private readonly RedisKey _key;
    private readonly RedisValue _member;
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _timeProvider;

    // The server's clock (ms) as read by the last TIME, and the local timestamp of that reply.
    private long _serverMs;
    private long _readAt;
    private bool _haveClock;

    public RedisFleetRegistry(Func<IDatabase?> database, string serviceName, string poolName, string instanceId, TimeSpan ttl, TimeProvider timeProvider)
    {
        _database = database;
        _key = KeyFor(serviceName, poolName);
        _member = instanceId;
        _ttl = ttl;
        _timeProvider = timeProvider;
    }

    /// <summary>The registration key of a service's pool: the hash tag keeps it in one slot of a cluster.</summary>
    public static string KeyFor(string serviceName, string poolName) => $"{RedisPoolFleetDefaults.KeyPrefix}{{{serviceName}:{poolName}}}";

    public async Task<IReadOnlyList<string>?> HeartbeatAsync(CancellationToken cancellationToken)
    {
        var db = _database();
        if (db is null)
        {
            return null;
        }

        if (!_haveClock)
        {
            Remember(await db.ExecuteAsync("TIME").WaitAsync(cancellationToken).ConfigureAwait(false));
        }

        var now = ServerNowMs();
        var transaction = db.CreateTransaction();
        var expired = transaction.SortedSetRemoveRangeByScoreAsync(_key, double.NegativeInfinity, now, Exclude.Stop);
        var added = transaction.SortedSetAddAsync(_key, _member, now + (long)_ttl.TotalMilliseconds);
        var members = transaction.SortedSetRangeByRankAsync(_key);

        // Everyone gone without disposing: the key itself goes too, nothing is left behind on the server.
        // PEXPIRE spelled out: StackExchange.Redis would send EXPIRE for whole seconds, one more command to grant.
        var expire = transaction.ExecuteAsync("PEXPIRE", _key, (long)(_ttl + _ttl).TotalMilliseconds);
        var time = transaction.ExecuteAsync("TIME");
        await transaction.ExecuteAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(expired, added, expire).ConfigureAwait(false);
        Remember(await time.ConfigureAwait(false));
        return [.. (await members.ConfigureAwait(false)).Select(m => m.ToString())];
    }

    public async Task DeregisterAsync(CancellationToken cancellationToken)
    {
        if (_database() is { } db)
        {
            await db.SortedSetRemoveAsync(_key, _member).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Remember(RedisResult time)
    {
        // TIME: [unix seconds, microseconds].
        var parts = (RedisResult[])time!;
        var seconds = long.Parse(parts[0].ToString(), CultureInfo.InvariantCulture);
        var micros = long.Parse(parts[1].ToString(), CultureInfo.InvariantCulture);
        _serverMs = (seconds * 1000) + (micros / 1000);
        _readAt = _timeProvider.GetTimestamp();
        _haveClock = true;
    }

    private long ServerNowMs() => _serverMs + (long)_timeProvider.GetElapsedTime(_readAt).TotalMilliseconds;
}
