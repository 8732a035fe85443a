using System.Collections.Concurrent;
using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>
/// Phase A: raw StackExchange.Redis written the way the incident's services were. Every multiplexer here opens
/// two sockets (interactive + subscription), AbortOnConnectFail=false, and the default reconnect policy.
/// </summary>
internal sealed class NaiveWorkload(string endpoint) : IWorkload
{
    public const string PerRequest = "A1 multiplexer per request (order-service)";
    public const string PerConsumer = "A2 one multiplexer per BLPOP consumer (notification-worker)";
    public const string NeverReleased = "A3 idle connections never released (cart-service)";
    public const string DefaultReconnect = "A4 default reconnect behaviour: abortConnect=false, default retry policy, in every multiplexer";

    private readonly ConcurrentDictionary<(int, int), Lazy<Task<ConnectionMultiplexer>>> _cartConnections = new();
    private readonly ConcurrentDictionary<(int, int), Lazy<Task<ConnectionMultiplexer>>> _consumerConnections = new();
    private ConnectionMultiplexer? _producer;

    public IReadOnlyList<string> Labels { get; } = [PerRequest, PerConsumer, NeverReleased, DefaultReconnect];

    public async Task StartAsync(CancellationToken cancellationToken) =>
        _producer = await ConnectAsync("order-service:notify").ConfigureAwait(false);

    public async Task OrderRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        // A1: "it is cheap to create" - a new multiplexer, two sockets and a handshake for every request.
        await using var connection = await ConnectAsync($"order-service:{instance}").ConfigureAwait(false);
        await ServiceRequests.OrderAsync(connection.GetDatabase(), sequence).ConfigureAwait(false);
    }

    public async Task CartRequestAsync(int instance, int worker, long sequence, CancellationToken cancellationToken)
    {
        // A3: each worker thread gets its own connection the first time it runs and keeps it forever;
        // after the spike the extra workers go quiet but their connections stay open.
        var connection = await _cartConnections.GetOrAdd((instance, worker),
            _ => new Lazy<Task<ConnectionMultiplexer>>(() => ConnectAsync($"cart-service:{instance}:{worker}"))).Value.ConfigureAwait(false);
        await ServiceRequests.CartAsync(connection.GetDatabase(), instance, sequence).ConfigureAwait(false);
    }

    public async Task PushAsync(string id, CancellationToken cancellationToken) =>
        await _producer!.GetDatabase().ListRightPushAsync(Scenario.QueueKey, id).ConfigureAwait(false);

    public async Task<string?> PopAsync(int instance, int consumer, CancellationToken cancellationToken)
    {
        // A2: BLPOP stalls the multiplexer it runs on, so each consumer got a multiplexer of its own.
        var connection = await _consumerConnections.GetOrAdd((instance, consumer),
            _ => new Lazy<Task<ConnectionMultiplexer>>(() => ConnectAsync($"notification-worker:{instance}:{consumer}"))).Value.ConfigureAwait(false);
        var result = await connection.GetDatabase().ExecuteAsync("BLPOP", Scenario.QueueKey, 1).ConfigureAwait(false);
        return result.IsNull ? null : (string?)result[1];
    }

    public async ValueTask ConsumerStoppedAsync(int instance, int consumer)
    {
        if (_consumerConnections.TryRemove((instance, consumer), out var lazy) && lazy.IsValueCreated)
        {
            try
            {
                await (await lazy.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (RedisException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        var all = _cartConnections.Values.Concat(_consumerConnections.Values).Where(l => l.IsValueCreated).Select(l => l.Value).ToList();
        _cartConnections.Clear();
        _consumerConnections.Clear();
        foreach (var task in all)
        {
            try
            {
                await (await task.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (RedisException)
            {
            }
        }

        if (_producer is not null)
        {
            await _producer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private Task<ConnectionMultiplexer> ConnectAsync(string clientName)
    {
        // A4: the defaults most services ship with; a multiplexer that cannot connect keeps retrying in the background.
        var options = ConfigurationOptions.Parse(endpoint);
        options.AbortOnConnectFail = false;
        options.ClientName = clientName.Replace(' ', '-');
        return ConnectionMultiplexer.ConnectAsync(options);
    }
}
