using FreeRedis;

namespace RedisPoolKit.LoadTests.Clients;

/// <summary>FreeRedis in pooled mode: each command borrows one of its sockets for the round trip.</summary>
internal sealed class FreeRedisLoadClient(string endPoint, int callers) : ILoadClient
{
    private RedisClient? _client;

    public Task ConnectAsync()
    {
        _client = new RedisClient($"{endPoint},max poolsize={callers},min poolsize=1");
        _client.Ping();
        return Task.CompletedTask;
    }

    public Task GetAsync(string key) => _client!.GetAsync<byte[]>(key);

    public Task SetAsync(string key, byte[] value) => _client!.SetAsync(key, value, timeoutSeconds: 0);

    public async Task<int> GetLengthAsync(string key) => (await _client!.GetAsync<byte[]>(key).ConfigureAwait(false))?.Length ?? 0;

    public ValueTask DisposeAsync()
    {
        _client?.Dispose();
        return ValueTask.CompletedTask;
    }
}
