using StackExchange.Redis;

namespace RedisPoolKit.LoadTests.Clients;

/// <summary>RedisPoolKit with default options: what a user gets from the one-line setup.</summary>
internal sealed class RedisPoolKitClient(string endPoint) : ILoadClient
{
    private readonly RedisPool _pool = new(new RedisPoolOptions { Configuration = endPoint });
    private IDatabase? _database;

    public async Task ConnectAsync()
    {
        await _pool.ConnectAsync().ConfigureAwait(false);
        _database = _pool.GetDatabase();
    }

    public Task GetAsync(string key) => _database!.StringGetAsync(key);

    public Task SetAsync(string key, byte[] value) => _database!.StringSetAsync(key, value);

    public async Task<int> GetLengthAsync(string key) => (int)(await _database!.StringGetAsync(key).ConfigureAwait(false)).Length();

    public ValueTask DisposeAsync() => _pool.DisposeAsync();
}
