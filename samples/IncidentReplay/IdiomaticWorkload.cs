using System.Collections.Concurrent;
using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>
/// Phase B: StackExchange.Redis as its own documentation asks: one multiplexer per service instance, created once
/// and shared by every request, and a dedicated multiplexer per <c>BLPOP</c> consumer (a blocking command stalls
/// the multiplexer it runs on), disposed when the consumer stops. Default options throughout.
/// </summary>
internal sealed class IdiomaticWorkload(string endpoint) : IWorkload
{
    private readonly ConcurrentDictionary<(int, int), Lazy<Task<ConnectionMultiplexer>>> _consumerConnections = new();
    private ConnectionMultiplexer[] _orders = [];
    private ConnectionMultiplexer[] _carts = [];
    private ConnectionMultiplexer? _producer;

    public IReadOnlyList<string> Labels { get; } =
    [
        "I1 one shared multiplexer per service instance (order-service, cart-service) and one for the notify producer, created at start",
        "I2 a dedicated multiplexer per BLPOP consumer (notification-worker), disposed when the autoscaler stops the consumer",
        "I3 default ConfigurationOptions (abortConnect, timeouts, reconnect policy) everywhere",
    ];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _orders = await Task.WhenAll(Enumerable.Range(0, Scenario.InstancesPerService).Select(i => ConnectAsync($"order-service:{i}"))).ConfigureAwait(false);
        _carts = await Task.WhenAll(Enumerable.Range(0, Scenario.InstancesPerService).Select(i => ConnectAsync($"cart-service:{i}"))).ConfigureAwait(false);
        _producer = await ConnectAsync("order-service:notify").ConfigureAwait(false);
    }

    public async Task OrderRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        await ServiceRequests.OrderAsync(_orders[instance].GetDatabase(), sequence).ConfigureAwait(false);
    }

    public async Task CartRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        await ServiceRequests.CartAsync(_carts[instance].GetDatabase(), instance, sequence).ConfigureAwait(false);
    }

    public async Task PushAsync(string id, CancellationToken cancellationToken) =>
        await _producer!.GetDatabase().ListRightPushAsync(Scenario.QueueKey, id).ConfigureAwait(false);

    public async Task<string?> PopAsync(int instance, int consumer, CancellationToken cancellationToken)
    {
        var lazy = _consumerConnections.GetOrAdd((instance, consumer),
            _ => new Lazy<Task<ConnectionMultiplexer>>(() => ConnectAsync($"notification-worker:{instance}:{consumer}")));
        ConnectionMultiplexer connection;
        try
        {
            connection = await lazy.Value.ConfigureAwait(false);
        }
        catch (RedisConnectionException)
        {
            // A consumer whose connect failed tries again on its next pop, as a hosted service restarting it would.
            _consumerConnections.TryRemove(new KeyValuePair<(int, int), Lazy<Task<ConnectionMultiplexer>>>((instance, consumer), lazy));
            throw;
        }

        var result = await connection.GetDatabase().ExecuteAsync("BLPOP", Scenario.QueueKey, 1).ConfigureAwait(false);
        return result.IsNull ? null : (string?)result[1];
    }

    public async ValueTask ConsumerStoppedAsync(int instance, int consumer)
    {
        if (_consumerConnections.TryRemove((instance, consumer), out var lazy) && lazy.IsValueCreated)
        {
            await DisposeQuietlyAsync(lazy.Value).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        var all = _consumerConnections.Values.Where(l => l.IsValueCreated).Select(l => l.Value).ToList();
        _consumerConnections.Clear();
        foreach (var task in all)
        {
            await DisposeQuietlyAsync(task).ConfigureAwait(false);
        }

        foreach (var connection in _orders.Concat(_carts).Append(_producer).OfType<ConnectionMultiplexer>())
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task DisposeQuietlyAsync(Task<ConnectionMultiplexer> connecting)
    {
        try
        {
            await (await connecting.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
        catch (RedisException)
        {
        }
    }

    private Task<ConnectionMultiplexer> ConnectAsync(string clientName)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.ClientName = clientName;
        return ConnectionMultiplexer.ConnectAsync(options);
    }
}
