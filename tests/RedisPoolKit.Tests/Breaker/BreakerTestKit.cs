using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Breaker;

/// <summary>A probe whose answers the test scripts; counts every socket it would have opened.</summary>
internal sealed class FakeProbe : IMaxClientsProbe
{
    private int _greetingCalls;
    private int _pingCalls;

    public Func<ProbeResult> Greeting { get; set; } = () => new(ProbeOutcome.MaxClients, "-ERR max number of clients reached");

    /// <summary>When set, the greeting probe waits for this task (to overlap concurrent failures).</summary>
    public Task<ProbeResult>? PendingGreeting { get; set; }

    public Func<Task<ProbeResult>> Ping { get; set; } = () => Task.FromResult(new ProbeResult(ProbeOutcome.Replied, "+PONG"));

    public int GreetingCalls => Volatile.Read(ref _greetingCalls);

    public int PingCalls => Volatile.Read(ref _pingCalls);

    public Task<ProbeResult> ReadGreetingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _greetingCalls);
        return (PendingGreeting ?? Task.FromResult(Greeting())).WaitAsync(cancellationToken);
    }

    public Task<ProbeResult> PingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _pingCalls);
        return Ping().WaitAsync(cancellationToken);
    }
}

/// <summary>A jitter source pinned to one value of [0, 1).</summary>
internal sealed class FixedRandom(double value) : Random
{
    public double Value { get; set; } = value;

    public override double NextDouble() => Value;

    protected override double Sample() => Value;
}

internal sealed class BreakerFixture : IAsyncDisposable
{
    public const string Pool = "orders";
    public static readonly EndPoint Endpoint = new DnsEndPoint("cache-1", 6379);

    public BreakerFixture(
        Action<RedisPoolBreakerOptions>? configure = null,
        bool useTls = false,
        Func<CancellationToken, Task<long?>>? readRejectedConnections = null,
        Random? random = null,
        RedisPoolMetrics? metrics = null)
    {
        Options = new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(2), MaxBreakDuration = TimeSpan.FromSeconds(10) };
        configure?.Invoke(Options);
        Breaker = new MaxClientsBreaker(
            Pool, Options, [Endpoint], useTls, TimeSpan.FromSeconds(1), Time, Logger, metrics,
            readRejectedConnections, random ?? new FixedRandom(0.0), Probe);
        Breaker.StateChanged += (_, e) =>
        {
            lock (Events)
            {
                Events.Add(e);
            }
        };
    }

    public RedisPoolBreakerOptions Options { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public FakeLogger Logger { get; } = new();

    public FakeProbe Probe { get; } = new();

    public MaxClientsBreaker Breaker { get; }

    public List<RedisPoolCircuitStateChangedEventArgs> Events { get; } = [];

    public Task FailAsync() => Breaker.OnSocketFailedAsync(new InvalidOperationException("SocketClosed (0-sent) last: HELLO"), CancellationToken.None);

    public RedisPoolCircuitOpenException Rejection()
    {
        try
        {
            Breaker.ThrowIfOpen("cache-1:6379");
        }
        catch (RedisPoolCircuitOpenException ex)
        {
            return ex;
        }

        throw new Xunit.Sdk.XunitException($"ThrowIfOpen did not throw in state {Breaker.State}");
    }

    public ValueTask DisposeAsync() => Breaker.DisposeAsync();
}
