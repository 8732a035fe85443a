namespace RedisPoolKit.Testing;

/// <summary>How <see cref="RedisSentinelSet.StartAsync"/> starts a master, its replicas and the sentinels watching them.</summary>
public sealed class RedisSentinelSetOptions
{
    /// <summary>The environment variable naming an explicit <c>redis-sentinel</c> binary.</summary>
    public const string SentinelPathVariable = "REDIS_SENTINEL_PATH";

    /// <summary>The name the sentinels monitor the master under, the <c>serviceName</c> a client asks for.</summary>
    /// <value><c>mymaster</c> by default.</value>
    public string ServiceName { get; set; } = "mymaster";

    /// <summary>How many replicas the master gets.</summary>
    /// <value>1 by default; at least 1, so a failover has a replica to promote.</value>
    public int Replicas { get; set; } = 1;

    /// <summary>How many sentinels watch the master.</summary>
    /// <value>3 by default; at least 1.</value>
    public int Sentinels { get; set; } = 3;

    /// <summary>How many sentinels must agree the master is down before a failover starts.</summary>
    /// <value><see langword="null"/> by default: a majority of <see cref="Sentinels"/>.</value>
    public int? Quorum { get; set; }

    /// <summary>The sentinels' <c>down-after-milliseconds</c>: how long the master may not answer before a sentinel thinks it is down.</summary>
    /// <value>1 second by default (Sentinel's own default is 30).</value>
    public TimeSpan DownAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The sentinels' <c>failover-timeout</c>.</summary>
    /// <value>5 seconds by default (Sentinel's own default is 3 minutes).</value>
    public TimeSpan FailoverTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Password the sentinels require (<c>requirepass</c> on each sentinel, which they also use with each other). The
    /// master and replicas are unaffected. <see cref="RedisSentinelSet.ConnectionString"/> carries it as <c>sentinelPassword</c>.
    /// </summary>
    /// <value><see langword="null"/> (no authentication) by default.</value>
    public string? SentinelPassword { get; set; }

    /// <summary>
    /// An ACL user the sentinels also accept, with <see cref="SentinelPassword"/> as its password and every command
    /// (<c>user name on &gt;password ~* &amp;* +@all</c>); the default user keeps <see cref="SentinelPassword"/> too.
    /// <see cref="RedisSentinelSet.ConnectionString"/> carries it as <c>sentinelUser</c>.
    /// </summary>
    /// <value><see langword="null"/> by default; needs <see cref="SentinelPassword"/>.</value>
    public string? SentinelUser { get; set; }

    /// <summary>Extra <c>redis-server</c> arguments for the master and the replicas.</summary>
    /// <value>Empty by default.</value>
    public IList<string> Arguments { get; } = new List<string>();

    /// <summary>
    /// How long the set has to start (replicas linked, every sentinel seeing the master, every replica and the other
    /// sentinels) and, separately, how long <see cref="RedisSentinelSet.FailoverAsync"/> may take.
    /// </summary>
    /// <value>30 seconds by default; must be positive.</value>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Path of the <c>redis-server</c> binary for the master and replicas, as <see cref="RedisServerOptions.ServerPath"/>.</summary>
    /// <value><see langword="null"/> by default: <c>REDIS_SERVER_PATH</c>, then <c>redis-server</c> on <c>PATH</c>. A Sentinel set never runs in Docker.</value>
    public string? ServerPath { get; set; }

    /// <summary>Path of the <c>redis-sentinel</c> binary (a <c>redis-server</c> binary works too: the harness passes <c>--sentinel</c>).</summary>
    /// <value><see langword="null"/> by default: <see cref="SentinelPathVariable"/>, then <c>redis-sentinel</c> on <c>PATH</c>.</value>
    public string? SentinelPath { get; set; }
}
