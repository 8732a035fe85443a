using System.Text.Json;
using RedisPoolKit;

namespace OrderService;

internal sealed class NotificationStats
{
    private long _processed;

    public long Processed => Interlocked.Read(ref _processed);

    public string? LastId { get; private set; }

    public void Record(string id)
    {
        LastId = id;
        Interlocked.Increment(ref _processed);
    }
}

/// <summary>
/// Consumes queue:notifications with BLPOP. BLPOP would stall a shared multiplexer for every other request, so it
/// runs on a connection leased from the pool's budget, returned after each pop.
/// </summary>
internal sealed partial class NotificationWorker(
    [FromKeyedServices(Pools.Orders)] IRedisPool pool,
    NotificationStats stats,
    ILogger<NotificationWorker> logger) : BackgroundService
{
    public const string QueueKey = "queue:notifications";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var lease = await pool.LeaseAsync(stoppingToken);
                // Never cancelled mid-command: a BLPOP abandoned after the server popped would lose the item.
                var result = await lease.Database.ExecuteAsync("BLPOP", QueueKey, 1);
                if (result.IsNull)
                {
                    continue;
                }

                var notification = JsonSerializer.Deserialize<Notification>((string)result[1]!)!;
                stats.Record(notification.Id);
                LogDelivered(notification.Id, notification.Message);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A pool rejection, an unreachable server or a bad message: log, back off instead of spinning, and
                // keep the worker alive (an escaping exception would stop the whole host).
                LogConsumeFailed(ex);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Delivered notification {Id}: {Message}")]
    private partial void LogDelivered(string id, string message);

    [LoggerMessage(2, LogLevel.Warning, "Consuming queue:notifications failed; retrying in 1 s")]
    private partial void LogConsumeFailed(Exception exception);
}
