namespace RedisPoolKit.LoadTests.Clients;

/// <summary>One client library under load: the harness drives every client through these three calls alone.</summary>
internal interface ILoadClient : IAsyncDisposable
{
    /// <summary>Opens what the client opens before its first command; <see cref="NotImplementedException"/> marks the client "not available".</summary>
    Task ConnectAsync();

    /// <summary>The measured GET; returns the client's own task so the harness adds no allocation of its own.</summary>
    Task GetAsync(string key);

    /// <summary>The measured SET.</summary>
    Task SetAsync(string key, byte[] value);

    /// <summary>GET that returns the value's length, to check once that the client reads what was written.</summary>
    Task<int> GetLengthAsync(string key);
}

/// <summary>A client the harness can run: its id on the command line, its name in the tables, and how to build one.</summary>
/// <param name="Id">The id for <c>--clients</c>.</param>
/// <param name="Display">The name in the result tables.</param>
/// <param name="Describe">How the client is configured, for the method section.</param>
/// <param name="Create">Builds the client for an endpoint and a number of concurrent callers.</param>
internal sealed record LoadClientKind(string Id, string Display, string Describe, Func<string, int, ILoadClient> Create)
{
    public const string RawId = "raw";
    public const string RedisPoolKitId = "redispoolkit";

    public static IReadOnlyList<LoadClientKind> All { get; } =
    [
        new(RawId, "StackExchange.Redis (raw)", "one ConnectionMultiplexer, default options", static (endPoint, _) => new RawMultiplexerClient(endPoint)),
        new(RedisPoolKitId, "RedisPoolKit", "new RedisPool(new RedisPoolOptions { Configuration = endpoint }), default options, then GetDatabase()", static (endPoint, _) => new RedisPoolKitClient(endPoint)),
        new("freeredis", "FreeRedis", "RedisClient with its pool, max poolsize = callers, min poolsize = 1", static (endPoint, callers) => new FreeRedisLoadClient(endPoint, callers)),
        new("csrediscore", "CSRedisCore", "CSRedisClient with its pool, poolsize = callers, preheat=false", static (endPoint, callers) => new CSRedisCoreLoadClient(endPoint, callers)),
    ];
}
