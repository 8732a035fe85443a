using BenchmarkDotNet.Attributes;
using RedisPoolKit.Testing;

namespace RedisPoolKit.Benchmarks;

/// <summary>
/// Multiplexer selection on the command path: <see cref="MultiplexerSet.TryPick"/> alone, and the router's
/// admission + pick + release (<see cref="CommandRouter.TryRoute"/> then <see cref="CommandRouter.Exit"/>) that
/// every pooled command pays, with 1 and 4 members, with a fixed in-flight limit and with the adaptive one (which times
/// one command in 16). The members are real multiplexers connected to a local
/// redis-server (a <see cref="MultiplexerEntry"/> needs one); nothing measured here touches the socket.
/// </summary>
[MemoryDiagnoser]
public class SelectionBenchmarks
{
    private RedisServer? _server;
    private RedisPool? _pool;
    private AdmissionLimiter? _admission;
    private CommandRouter? _router;
    private CommandRouter? _adaptiveRouter;

    [Params(1, 4)]
    public int Members { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = await RedisServer.StartAsync(new RedisServerOptions { StartTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
        _pool = new RedisPool(new RedisPoolOptions
        {
            Configuration = _server.ConnectionString,
            MinMultiplexers = Members,
            MaxMultiplexers = Members,
        });
        await _pool.ConnectAsync().ConfigureAwait(false);
        if (_pool.Multiplexers.Count != Members)
        {
            throw new InvalidOperationException($"Expected {Members} multiplexers, the pool has {_pool.Multiplexers.Count}.");
        }

        var metrics = new RedisPoolMetrics();
        _admission = new AdmissionLimiter("bench", RedisPoolDefaults.MaxInFlight, RedisPoolDefaults.MaxQueueLength, RedisPoolDefaults.QueueTimeout, TimeProvider.System, metrics);
        _router = new CommandRouter("bench", _admission, _pool.Multiplexers, metrics);
        var adaptive = new AdmissionLimiter(
            "bench", RedisPoolDefaults.MaxInFlight, RedisPoolDefaults.MaxQueueLength, RedisPoolDefaults.QueueTimeout, TimeProvider.System, metrics, rejectionLog: null,
            new AdaptiveInFlightLimit(RedisPoolDefaults.AdaptiveInFlightFloor, RedisPoolDefaults.MaxInFlight, TimeProvider.System));
        _adaptiveRouter = new CommandRouter("bench", adaptive, _pool.Multiplexers, metrics);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_pool is not null)
        {
            await _pool.DisposeAsync().ConfigureAwait(false);
        }

        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    [Benchmark]
    public int TryPick() => _pool!.Multiplexers.TryPick()!.Index;

    [Benchmark]
    public bool RouterTryEnterExit()
    {
        if (!_router!.TryRoute(-1, out var route))
        {
            return false;
        }

        _router.Exit(route, failure: null);
        return true;
    }

    [Benchmark]
    public bool RouterTryEnterExitAdaptive()
    {
        if (!_adaptiveRouter!.TryRoute(-1, out var route))
        {
            return false;
        }

        _adaptiveRouter.Exit(route, failure: null);
        return true;
    }

    [Benchmark]
    public bool AdmissionTryEnterExit()
    {
        if (!_admission!.TryEnter())
        {
            return false;
        }

        _admission.Exit();
        return true;
    }
}
