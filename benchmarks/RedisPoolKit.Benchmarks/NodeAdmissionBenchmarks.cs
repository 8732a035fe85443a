using BenchmarkDotNet.Attributes;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Benchmarks;

/// <summary>
/// What the per-master in-flight limit costs on the command path: the router's admission, pick and release for a
/// command on a key (<see cref="CommandRouter.TryRoute(int, in RedisKey, out CommandRoute)"/> then
/// <see cref="CommandRouter.Exit(in CommandRoute, Exception?)"/>), with the adaptive limit, against a standalone server
/// (one null check more than the keyless route, which is what every command paid before) and against a real local
/// 3-master cluster (the key's hash slot, a slot-table read and the master's own permit). One member each; nothing
/// measured here touches the socket.
/// </summary>
[MemoryDiagnoser]
public class NodeAdmissionBenchmarks
{
    private static readonly RedisKey Key = "bench:node-admission";

    private RedisServer? _server;
    private RedisCluster? _cluster;
    private RedisPool? _standalonePool;
    private RedisPool? _clusterPool;
    private CommandRouter? _standalone;
    private CommandRouter? _clustered;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var metrics = new RedisPoolMetrics();
        _server = await RedisServer.StartAsync(new RedisServerOptions { StartTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
        _standalonePool = await ConnectAsync(_server.ConnectionString).ConfigureAwait(false);
        _standalone = new CommandRouter("bench", Adaptive(metrics), _standalonePool.Multiplexers, metrics);

        _cluster = await RedisCluster.StartAsync().ConfigureAwait(false);
        _clusterPool = await ConnectAsync(_cluster.ConnectionString).ConfigureAwait(false);
        _clustered = new CommandRouter("bench", Adaptive(metrics), _clusterPool.Multiplexers, metrics);
        var nodes = new NodeAdmission(node => Adaptive(metrics, node));
        if (!nodes.Refresh(_clusterPool.Multiplexers.Oldest!.Multiplexer) || nodes.Limiters.Count != 3)
        {
            throw new InvalidOperationException($"Expected a slot table over 3 masters, got {nodes.Limiters.Count}.");
        }

        _clustered.UseNodeLimits(nodes);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        foreach (var pool in new[] { _standalonePool, _clusterPool })
        {
            if (pool is not null)
            {
                await pool.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }

        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The keyless route: what a command on a key paid before per-master limits.</summary>
    [Benchmark(Baseline = true)]
    public bool StandaloneKeyless() => RouteAndExit(_standalone!, keyed: false);

    [Benchmark]
    public bool StandaloneKeyed() => RouteAndExit(_standalone!, keyed: true);

    [Benchmark]
    public bool ClusterKeyed() => RouteAndExit(_clustered!, keyed: true);

    /// <summary>The part of <see cref="ClusterKeyed"/> StackExchange.Redis computes: the key's hash slot (CRC16).</summary>
    [Benchmark]
    public int ClusterHashSlot() => _clusterPool!.Multiplexers.Oldest!.Multiplexer.HashSlot(Key);

    private static bool RouteAndExit(CommandRouter router, bool keyed)
    {
        if (!(keyed ? router.TryRoute(-1, Key, out var route) : router.TryRoute(-1, out route)))
        {
            return false;
        }

        router.Exit(route, failure: null);
        return true;
    }

    private static AdmissionLimiter Adaptive(RedisPoolMetrics metrics, string? node = null) => new(
        "bench", RedisPoolDefaults.MaxInFlight, RedisPoolDefaults.MaxQueueLength, RedisPoolDefaults.QueueTimeout, TimeProvider.System, metrics, rejectionLog: null,
        new AdaptiveInFlightLimit(RedisPoolDefaults.AdaptiveInFlightFloor, RedisPoolDefaults.MaxInFlight, TimeProvider.System), node);

    private static async Task<RedisPool> ConnectAsync(string configuration)
    {
        var pool = new RedisPool(new RedisPoolOptions { Configuration = configuration, MinMultiplexers = 1, MaxMultiplexers = 1 });
        await pool.ConnectAsync().ConfigureAwait(false);
        return pool;
    }
}
