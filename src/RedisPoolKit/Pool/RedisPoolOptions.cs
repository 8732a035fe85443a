namespace RedisPoolKit;

/// <summary>
/// Options of one <see cref="RedisPool"/>. Plain settable properties, bindable from <c>IConfiguration</c>.
/// They are validated once, when the pool is built; every invalid value is reported in one exception.
/// </summary>
public sealed class RedisPoolOptions
{
    /// <summary>The pool's name: a tag on every metric and part of every socket's client name.</summary>
    /// <value>Default <c>"default"</c>. 1-64 letters, digits, <c>-</c>, <c>_</c>, <c>.</c>; no spaces. DI sets it from the key.</value>
    public string Name { get; set; } = RedisPoolDefaults.Name;

    /// <summary>The StackExchange.Redis configuration string, e.g. <c>"localhost:6379,password=..."</c>.</summary>
    /// <value>No default: required. The pool overrides the settings it owns (protocol, backlog, client name, timeouts).</value>
    public string? Configuration { get; set; }

    /// <summary>
    /// Code-level StackExchange.Redis settings the configuration string cannot carry: a certificate validation or
    /// selection callback, token-based authentication, a custom <c>SocketManager</c> or <c>Tunnel</c>. Called once,
    /// when the pool is built, on the options parsed from <see cref="Configuration"/>; every multiplexer and lease
    /// socket connects with a copy of the result, and the breaker's probe takes its endpoints and TLS flag from it.
    /// </summary>
    /// <value>
    /// Default <see langword="null"/>. The settings the pool owns are applied after it on every socket and cannot be
    /// changed here: <c>ClientName</c>, <c>LibraryName</c>, <c>Protocol</c> and <c>SharedSubscriptionConnection</c>
    /// (while <see cref="SharedSubscriptionConnection"/> is on), <c>ConfigurationChannel</c> (cleared on shared sockets),
    /// <c>BacklogPolicy</c>, <c>AbortOnConnectFail</c>, <c>ConnectRetry</c>, <c>ConnectTimeout</c>, <c>AllowAdmin</c>,
    /// <c>ReconnectRetryPolicy</c>, and on lease sockets <c>SyncTimeout</c>/<c>AsyncTimeout</c>.
    /// </value>
    public Action<StackExchange.Redis.ConfigurationOptions>? ConfigureOptions { get; set; }

    /// <summary>The service that holds the sockets, first part of every <c>CLIENT SETNAME</c>.</summary>
    /// <value>
    /// Default: the entry assembly's name; under <c>AddRedisPool</c>, the host's <c>IHostEnvironment.ApplicationName</c>, so every
    /// pool of one service groups together in <c>CLIENT LIST</c>. Characters <c>CLIENT SETNAME</c> cannot carry become <c>-</c>.
    /// 1-64 letters, digits, <c>-</c>, <c>_</c>, <c>.</c> when set.
    /// </value>
    public string ServiceName { get; set; } = RedisClientNames.DefaultServiceName;

    /// <summary>The instance of the service (pod, host), second part of every <c>CLIENT SETNAME</c>.</summary>
    /// <value>Default <see langword="null"/>: the machine name and process id. 1-64 letters, digits, <c>-</c>, <c>_</c>, <c>.</c> when set.</value>
    public string? InstanceId { get; set; }

    /// <summary>Hard cap on the sockets this pool holds per server endpoint: multiplexers and leases draw from it (the monitor reads over one of them).</summary>
    /// <value>Default 8. At least 1, and at least <see cref="MinMultiplexers"/> sockets (two per multiplexer without <see cref="SharedSubscriptionConnection"/>). <see cref="MaxMultiplexers"/> and <see cref="RedisPoolLeaseOptions.MaxLeases"/> may add up past it: they compete for it.</value>
    public int MaxConnections { get; set; } = RedisPoolDefaults.MaxConnections;

    /// <summary>Multiplexers kept connected at all times.</summary>
    /// <value>Default 1. At least 1, at most <see cref="MaxMultiplexers"/>, and its sockets must fit in <see cref="MaxConnections"/>.</value>
    public int MinMultiplexers { get; set; } = RedisPoolDefaults.MinMultiplexers;

    /// <summary>Multiplexers the pool may grow to when one is measurably saturated.</summary>
    /// <value>Default 2. At least 1 and at least <see cref="MinMultiplexers"/>. On small machines extra multiplexers cost throughput (see docs/Performance.md).</value>
    public int MaxMultiplexers { get; set; } = RedisPoolDefaults.MaxMultiplexers;

    /// <summary>Commands outstanding through the pool at once; past it callers queue.</summary>
    /// <value>Default 1024. At least 1.</value>
    public int MaxInFlight { get; set; } = RedisPoolDefaults.MaxInFlight;

    /// <summary>
    /// Find the in-flight limit from measured latency: it grows while commands complete near the server's no-load
    /// latency and shrinks when queueing delay appears, so an overload queues in the pool (bounded by
    /// <see cref="MaxQueueLength"/> and <see cref="QueueTimeout"/>) instead of in the socket. <see cref="MaxInFlight"/>
    /// is its ceiling; it never goes below 64 (or <see cref="MaxInFlight"/>, if lower). See docs/Configuration.md.
    /// </summary>
    /// <value>Default <see langword="true"/>. <see langword="false"/>: the limit is <see cref="MaxInFlight"/>, whatever the latency.</value>
    public bool AdaptiveInFlight { get; set; } = RedisPoolDefaults.AdaptiveInFlight;

    /// <summary>
    /// Callers that may wait for admission (in a Redis Cluster, in each master's queue and in the pool's, each on its own);
    /// past it they are rejected at once with <see cref="RedisPoolExhaustedReason.QueueFull"/>.
    /// </summary>
    /// <value>Default 1024. Zero or more (0: never queue).</value>
    public int MaxQueueLength { get; set; } = RedisPoolDefaults.MaxQueueLength;

    /// <summary>How long a caller waits for admission before <see cref="RedisPoolExhaustedReason.QueueTimeout"/>.</summary>
    /// <value>Default 1 s. Greater than zero, at most 49.17:02:47.294, the longest a .NET timer waits.</value>
    public TimeSpan QueueTimeout { get; set; } = RedisPoolDefaults.QueueTimeout;

    /// <summary>Bound on opening one socket (TCP, handshake, <c>CLIENT SETNAME</c>).</summary>
    /// <value>Default 5 s. Greater than zero, at most 24.20:31:23.647 (StackExchange.Redis takes it in int milliseconds).</value>
    public TimeSpan ConnectTimeout { get; set; } = RedisPoolDefaults.ConnectTimeout;

    /// <summary>On dispose (and host stop), how long in-flight commands and leases may finish before sockets are closed anyway.</summary>
    /// <value>Default 5 s. Zero or more (0: close at once), at most 49.17:02:47.294, the longest a .NET timer waits.</value>
    public TimeSpan ShutdownGracePeriod { get; set; } = RedisPoolDefaults.ShutdownGracePeriod;

    /// <summary>Whether a host fails to start when the pool cannot connect within <see cref="ConnectTimeout"/>. When false the host starts degraded and the pool keeps trying under the breaker.</summary>
    /// <value>Default <see langword="true"/>.</value>
    public bool RequireConnectionOnStart { get; set; } = true;

    /// <summary>
    /// Use one socket per multiplexer (RESP3 with a shared subscription connection). Turn off to get
    /// StackExchange.Redis's two sockets per multiplexer (interactive + subscription).
    /// </summary>
    /// <value>
    /// Default <see langword="true"/>. With it the one socket is a pub/sub client for the server, so its
    /// <c>client-output-buffer-limit pubsub</c> applies to it; turn it off if heavy pub/sub traffic could hit that limit.
    /// Each multiplexer then takes two slots of <see cref="MaxConnections"/>.
    /// </value>
    public bool SharedSubscriptionConnection { get; set; } = true;

    /// <summary>Leased, exclusive connections for blocking commands.</summary>
    public RedisPoolLeaseOptions Leases { get; set; } = new();

    /// <summary>The max-clients circuit breaker.</summary>
    public RedisPoolBreakerOptions Breaker { get; set; } = new();

    /// <summary>The server utilization monitor.</summary>
    public RedisPoolMonitorOptions Monitor { get; set; } = new();

    /// <summary>One socket budget shared by every instance of this service and pool (off by default). See docs/Fleet.md.</summary>
    public RedisPoolFleetOptions Fleet { get; set; } = new();
}
