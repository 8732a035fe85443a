namespace RedisPoolKit.Testing;

/// <summary>How <see cref="RedisCluster.StartAsync"/> starts a local Redis Cluster.</summary>
public sealed class RedisClusterOptions
{
    /// <summary>The environment variable naming an explicit <c>redis-cli</c> binary.</summary>
    public const string CliPathVariable = "REDIS_CLI_PATH";

    /// <summary>How many masters share the 16384 slots.</summary>
    /// <value>3 by default, the least <c>redis-cli --cluster create</c> accepts.</value>
    public int Masters { get; set; } = 3;

    /// <summary>How many replicas each master gets.</summary>
    /// <value>0 by default; must not be negative.</value>
    public int ReplicasPerMaster { get; set; }

    /// <summary>The nodes' <c>cluster-node-timeout</c>: how long a node may be unreachable before the others mark it failed.</summary>
    /// <value>5 seconds by default (Redis's own default is 15). Shorter makes failover tests quicker, and a busy machine more likely to fail over by itself.</value>
    public TimeSpan NodeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Extra <c>redis-server</c> arguments for every node, appended after the harness's own (for example <c>"--cluster-require-full-coverage", "no"</c>).</summary>
    /// <value>Empty by default.</value>
    public IList<string> Arguments { get; } = new List<string>();

    /// <summary>How long the whole cluster has to start: every process answering, <c>redis-cli --cluster create</c> done, and every node reporting <c>cluster_state:ok</c>.</summary>
    /// <value>30 seconds by default; must be positive.</value>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Path of the <c>redis-server</c> binary, as <see cref="RedisServerOptions.ServerPath"/>.</summary>
    /// <value><see langword="null"/> by default: <c>REDIS_SERVER_PATH</c>, then <c>redis-server</c> on <c>PATH</c>. A cluster never runs in Docker.</value>
    public string? ServerPath { get; set; }

    /// <summary>Path of the <c>redis-cli</c> binary that creates the cluster.</summary>
    /// <value><see langword="null"/> by default: <see cref="CliPathVariable"/>, then <c>redis-cli</c> on <c>PATH</c>.</value>
    public string? CliPath { get; set; }
}
