using BenchmarkDotNet.Attributes;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Benchmarks;

/// <summary>
/// What the pool adds to one command against a real local redis-server: <c>pool.GetDatabase().StringGetAsync</c>
/// against the same call on one plain <see cref="ConnectionMultiplexer"/>. One caller, so the round trip
/// dominates; the difference is the pool's admission, routing and release.
/// </summary>
[MemoryDiagnoser]
public class PerCallOverheadBenchmarks
{
    private const string Key = "bench:percall";

    private RedisServer? _server;
    private ConnectionMultiplexer? _multiplexer;
    private IDatabase? _raw;
    private RedisPool? _pool;

    [GlobalSetup(Target = nameof(RawMultiplexer))]
    public async Task SetupRawAsync()
    {
        await StartServerAsync().ConfigureAwait(false);
        _multiplexer = await ConnectionMultiplexer.ConnectAsync(_server!.ConnectionString).ConfigureAwait(false);
        _raw = _multiplexer.GetDatabase();
    }

    [GlobalSetup(Target = nameof(PooledDatabase))]
    public async Task SetupPoolAsync()
    {
        await StartServerAsync().ConfigureAwait(false);
        _pool = new RedisPool(new RedisPoolOptions { Configuration = _server!.ConnectionString });
        await _pool.ConnectAsync().ConfigureAwait(false);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_pool is not null)
        {
            await _pool.DisposeAsync().ConfigureAwait(false);
        }

        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync().ConfigureAwait(false);
        }

        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    [Benchmark(Baseline = true)]
    public Task<RedisValue> RawMultiplexer() => _raw!.StringGetAsync(Key);

    [Benchmark]
    public Task<RedisValue> PooledDatabase() => _pool!.GetDatabase().StringGetAsync(Key);

    private async Task StartServerAsync()
    {
        _server = await RedisServer.StartAsync(new RedisServerOptions { StartTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
        await using var writer = await ConnectionMultiplexer.ConnectAsync(_server.ConnectionString).ConfigureAwait(false);
        await writer.GetDatabase().StringSetAsync(Key, new byte[100]).ConfigureAwait(false);
    }
}
