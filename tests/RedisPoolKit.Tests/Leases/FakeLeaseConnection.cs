using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Leases;

internal sealed class FakeLeaseConnection(int index, long clientId) : ILeaseConnection
{
    private int _disposed;
    private IDatabase? _database;

    public int Index { get; } = index;

    /// <summary>Set by a test that sends commands through the lease; otherwise the fake has no database.</summary>
    public IDatabase Database
    {
        get => _database ?? throw new NotSupportedException("The fake has no database.");
        set => _database = value;
    }

    public string Name => $"svc:inst:test:lease{Index}";

    public long ClientId { get; } = clientId;

    public bool IsConnected { get; set; } = true;

    /// <summary>The server the fake says it is connected to; null (unknown) unless a test sets it.</summary>
    public string? Node { get; set; }

    public bool HasPendingReplies
    {
        get
        {
            PendingChecks++;
            return field;
        }

        set;
    }

    public int PendingChecks { get; private set; }

    public bool PingSucceeds { get; set; } = true;

    public int Pings { get; private set; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public int DisposeCount => Volatile.Read(ref _disposed);

    public ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        Pings++;
        return ValueTask.FromResult(PingSucceeds);
    }

    public ValueTask DisposeAsync()
    {
        Interlocked.Increment(ref _disposed);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Opens fake sockets, optionally held at a gate, and records how many connects ran at once.</summary>
internal sealed class FakeConnector
{
    private readonly Lock _lock = new();
    private readonly List<FakeLeaseConnection> _created = [];
    private readonly Queue<TaskCompletionSource> _gates = new();
    private int _inFlight;
    private long _clientIds = 100;

    public bool Gated { get; set; }

    public Exception? Failure { get; set; }

    /// <summary>Runs just before a connect throws <see cref="Failure"/>: what happens between the refusal and its report.</summary>
    public Action? BeforeFailure { get; set; }

    public int MaxConcurrent { get; private set; }

    public int Attempts { get; private set; }

    public IReadOnlyList<FakeLeaseConnection> Created { get { lock (_lock) { return [.. _created]; } } }

    public int PendingGates { get { lock (_lock) { return _gates.Count; } } }

    public void OpenOneGate()
    {
        TaskCompletionSource gate;
        lock (_lock)
        {
            gate = _gates.Dequeue();
        }

        gate.SetResult();
    }

    public async ValueTask<ILeaseConnection> ConnectAsync(int index, CancellationToken cancellationToken)
    {
        TaskCompletionSource? gate = null;
        lock (_lock)
        {
            Attempts++;
            _inFlight++;
            MaxConcurrent = Math.Max(MaxConcurrent, _inFlight);
            if (Gated)
            {
                gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _gates.Enqueue(gate);
            }
        }

        try
        {
            if (gate is not null)
            {
                await gate.Task.WaitAsync(cancellationToken);
            }

            if (Failure is { } failure)
            {
                BeforeFailure?.Invoke();
                throw failure;
            }

            var connection = new FakeLeaseConnection(index, Interlocked.Increment(ref _clientIds));
            lock (_lock)
            {
                _created.Add(connection);
            }

            return connection;
        }
        finally
        {
            lock (_lock)
            {
                _inFlight--;
            }
        }
    }
}

internal static class LeaseTestKit
{
    public static LeasePool CreatePool(
        FakeTimeProvider time,
        FakeConnector connector,
        Action<RedisPoolLeaseOptions>? configure = null,
        ILogger? logger = null,
        TimeSpan? shutdownGracePeriod = null,
        RedisPoolMetrics? metrics = null)
    {
        var options = new RedisPoolLeaseOptions { MaxLeases = 4 };
        configure?.Invoke(options);
        return new LeasePool(
            options,
            "test",
            connector.ConnectAsync,
            _ => Task.FromResult(true),
            () => "3 of 8 sockets in use",
            shutdownGracePeriod ?? TimeSpan.Zero,
            time,
            logger ?? NullLogger.Instance,
            metrics ?? new RedisPoolMetrics());
    }

    public static FakeLeaseConnection Socket(this RedisLease lease) => (FakeLeaseConnection)lease.Entry.Connection;

    /// <summary>
    /// Polls <paramref name="condition"/> with a 10 s deadline while the pool's background work (closing sockets on
    /// the thread pool) finishes. It yields instead of sleeping: the test's time is the FakeTimeProvider's.
    /// </summary>
    public static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                Assert.Fail($"Timed out waiting for: {what}");
            }

            await Task.Yield();
        }
    }
}
