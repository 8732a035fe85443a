using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Routing;

/// <summary>
/// A <see cref="MultiplexerSet"/> whose members are real multiplexers that never connect (their port refuses), so
/// picking, scaling and retiring run without a server, on a <see cref="FakeTimeProvider"/>.
/// </summary>
internal sealed class MultiplexerSetFixture : IAsyncDisposable
{
    private static readonly Lazy<int> s_closedPort = new(() =>
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    });

    private readonly List<PooledConnection> _opened = [];
    private int _connects;

    public MultiplexerSetFixture(int minMultiplexers = 1, int maxMultiplexers = 3)
    {
        Options = new RedisPoolOptions
        {
            Name = "routing",
            Configuration = "127.0.0.1:6379",
            MinMultiplexers = minMultiplexers,
            MaxMultiplexers = maxMultiplexers,
            ShutdownGracePeriod = TimeSpan.FromSeconds(5),
        };
        Set = new MultiplexerSet(Options, ConnectAsync, Time, NullLogger.Instance);
        Set.Added += entry => Added.Writer.TryWrite(entry);
        Set.Removed += entry => Removed.Writer.TryWrite(entry);
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public RedisPoolOptions Options { get; }

    public ConnectionBudget Budget { get; } = new(16);

    public MultiplexerSet Set { get; }

    public System.Threading.Channels.Channel<MultiplexerEntry> Added { get; } = System.Threading.Channels.Channel.CreateUnbounded<MultiplexerEntry>();

    public System.Threading.Channels.Channel<MultiplexerEntry> Removed { get; } = System.Threading.Channels.Channel.CreateUnbounded<MultiplexerEntry>();

    /// <summary>Sockets the set asked for.</summary>
    public int Connects => Volatile.Read(ref _connects);

    /// <summary>Advances time one maintenance tick at a time, so every tick runs.</summary>
    public void Tick(int ticks = 1)
    {
        for (var i = 0; i < ticks; i++)
        {
            Time.Advance(MultiplexerScaler.MaintenanceInterval);
        }
    }

    /// <summary>Waits for the next member to join (the set adds in the background).</summary>
    public async Task<MultiplexerEntry> NextAddedAsync() => await Added.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

    /// <summary>Waits for the next member to leave.</summary>
    public async Task<MultiplexerEntry> NextRemovedAsync() => await Removed.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

    public static void Load(MultiplexerEntry entry, int commands)
    {
        for (var i = 0; i < commands; i++)
        {
            entry.Enter();
        }
    }

    public static void Unload(MultiplexerEntry entry, int commands)
    {
        for (var i = 0; i < commands; i++)
        {
            entry.Exit();
        }
    }

    private async Task<PooledConnection> ConnectAsync(int index, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _connects);
        Assert.True(Budget.TryReserve(SocketRole.Multiplexer));
        var configuration = new ConfigurationOptions
        {
            EndPoints = { { IPAddress.Loopback, s_closedPort.Value } },
            AbortOnConnectFail = false,
            ConnectTimeout = 200,
            ConnectRetry = 0,
        };
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken);
        var connection = new PooledConnection(multiplexer, Budget, SocketRole.Multiplexer, index, 1, $"routing-{index}", Time.GetTimestamp());
        lock (_opened)
        {
            _opened.Add(connection);
        }

        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        await Set.DisposeAsync();
        PooledConnection[] opened;
        lock (_opened)
        {
            opened = [.. _opened];
        }

        foreach (var connection in opened)
        {
            await connection.DisposeAsync();
        }
    }
}
