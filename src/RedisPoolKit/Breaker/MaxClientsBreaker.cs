using StackExchange.Redis;

namespace RedisPoolKit;

// PLACEHOLDER (issue 5 replaces this file): a breaker that never opens.
#pragma warning disable CA1822 // Placeholder members become stateful with the breaker.
internal sealed class MaxClientsBreaker
{
    private sealed class AlwaysRetry : IReconnectRetryPolicy
    {
        public bool ShouldRetry(long currentRetryCount, int timeElapsedMillisecondsSinceLastRetry) =>
            timeElapsedMillisecondsSinceLastRetry >= 1000;
    }

    public RedisPoolCircuitState State => RedisPoolCircuitState.Closed;

    public IReconnectRetryPolicy ReconnectRetryPolicy { get; } = new AlwaysRetry();

    public long ReconnectsSuppressed => 0;

    public long RejectedCircuitOpen => 0;

    public void ThrowIfOpen(string endPoints) => _ = endPoints;

    public void OnSocketOpened() { }

    public Task OnSocketFailedAsync(Exception failure, CancellationToken cancellationToken) => Task.CompletedTask;

    public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? StateChanged { add { } remove { } }
}
#pragma warning restore CA1822
