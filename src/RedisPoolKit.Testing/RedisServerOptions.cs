namespace RedisPoolKit.Testing;

/// <summary>How <see cref="RedisServer.StartAsync"/> starts an isolated Redis server.</summary>
public sealed class RedisServerOptions
{
    /// <summary>Extra <c>redis-server</c> arguments, appended after the harness's own (for example <c>"--maxclients", "40"</c>).</summary>
    /// <value>Empty by default. Each element is one argument: <c>["--timeout", "1"]</c>, not <c>["--timeout 1"]</c>.</value>
    public IList<string> Arguments { get; } = new List<string>();

    /// <summary>
    /// Commands the server renames (<c>--rename-command</c>), as managed services do: name to new name, an empty new name
    /// disables the command. <see cref="RedisServer.ConnectionString"/> and <see cref="RedisServer.Admin"/> carry the
    /// matching StackExchange.Redis command map (<c>$CONFIG=</c>).
    /// </summary>
    /// <value>Empty by default.</value>
    public IDictionary<string, string> RenamedCommands { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Password the server requires (<c>--requirepass</c>); included in <see cref="RedisServer.ConnectionString"/>.</summary>
    /// <value><see langword="null"/> (no authentication) by default.</value>
    public string? Password { get; set; }

    /// <summary>How long the server has to answer <c>PING</c> after it is launched.</summary>
    /// <value>10 seconds by default; must be positive.</value>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Loopback port to listen on.</summary>
    /// <value><see langword="null"/> by default: a free port is chosen (and another one tried if it is taken meanwhile).
    /// A fixed port that is taken fails with <see cref="RedisServerStartFailure.PortInUse"/>.</value>
    public int? Port { get; set; }

    /// <summary>Path of the <c>redis-server</c> binary to run, ahead of the <c>REDIS_SERVER_PATH</c> environment variable and the <c>PATH</c>.</summary>
    /// <value><see langword="null"/> by default: <c>REDIS_SERVER_PATH</c>, then <c>redis-server</c> on <c>PATH</c>, then a Docker container.</value>
    public string? ServerPath { get; set; }

    /// <summary>Which backend to use.</summary>
    /// <value><see langword="null"/> by default: a local binary when one is found, otherwise a container.
    /// <see cref="RedisServerBackend.Process"/> never falls back to Docker; <see cref="RedisServerBackend.Container"/> never looks for a binary.</value>
    public RedisServerBackend? Backend { get; set; }

    /// <summary>Container image used when no <c>redis-server</c> binary is found and a Docker engine answers.</summary>
    /// <value><c>redis:7.0</c> by default.</value>
    public string ContainerImage { get; set; } = "redis:7.0";

    /// <summary>A configuration file passed as the server's first argument (Sentinel needs one it can rewrite).</summary>
    internal string? ConfigFile { get; set; }

    /// <summary>
    /// Whether <see cref="RedisServer.StartAsync"/> opens <see cref="RedisServer.Admin"/>. Cluster nodes and
    /// sentinels get a one-socket admin connection of their own instead: a multiplexer would discover the topology.
    /// </summary>
    internal bool OpenAdmin { get; set; } = true;
}
