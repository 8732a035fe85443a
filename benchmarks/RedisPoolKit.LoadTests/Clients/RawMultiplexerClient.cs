using StackExchange.Redis;

namespace RedisPoolKit.LoadTests.Clients;

/// <summary>The baseline: one StackExchange.Redis multiplexer shared by every caller.</summary>
internal sealed class RawMultiplexerClient(string endPoint) : ILoadClient
{
    /// <summary>Its sockets' <c>CLIENT SETNAME</c>, so a paired run can count them apart from the pool's.</summary>
    public const string ClientName = "loadtest-raw";

    private ConnectionMultiplexer? _multiplexer;
    private IDatabase? _database;

    public async Task ConnectAsync()
    {
        _multiplexer = await ConnectionMultiplexer.ConnectAsync($"{endPoint},name={ClientName}").ConfigureAwait(false);
        _database = _multiplexer.GetDatabase();
    }

    public Task GetAsync(string key) => _database!.StringGetAsync(key);

    public Task SetAsync(string key, byte[] value) => _database!.StringSetAsync(key, value);

    public async Task<int> GetLengthAsync(string key) => (int)(await _database!.StringGetAsync(key).ConfigureAwait(false)).Length();

    public async ValueTask DisposeAsync()
    {
        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync().ConfigureAwait(false);
        }
    }
}
