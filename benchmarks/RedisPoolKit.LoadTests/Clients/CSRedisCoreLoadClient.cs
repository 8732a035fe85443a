using CSRedis;

namespace RedisPoolKit.LoadTests.Clients;

/// <summary>CSRedisCore with its pool: like FreeRedis, one socket per command in flight.</summary>
internal sealed class CSRedisCoreLoadClient(string endPoint, int callers) : ILoadClient
{
    private CSRedisClient? _client;

    public Task ConnectAsync()
    {
        _client = new CSRedisClient($"{endPoint},poolsize={callers},preheat=false");
        return _client.PingAsync();
    }

    public Task GetAsync(string key) => _client!.GetAsync<byte[]>(key);

    public Task SetAsync(string key, byte[] value) => _client!.SetAsync(key, value);

    public async Task<int> GetLengthAsync(string key) => (await _client!.GetAsync<byte[]>(key).ConfigureAwait(false))?.Length ?? 0;

    public ValueTask DisposeAsync()
    {
        _client?.Dispose();
        return ValueTask.CompletedTask;
    }
}
