using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Breaker;

/// <summary>
/// The raw socket that classifies a socket StackExchange.Redis lost never opens beside that socket's reconnect: it
/// stands in for the lost socket only while that one waits in the tunnel, and is not sent while the reconnect is under
/// way. A server with room for exactly <c>MaxConnections</c> then never sees one socket too many.
/// </summary>
public sealed class LostSocketProbeTests : IAsyncDisposable
{
    private static readonly EndPoint Server = new IPEndPoint(IPAddress.Loopback, 6379);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly FakeProbe _probe = new();
    private readonly ConnectionBudget _budget = new(1, "127.0.0.1:6379");
    private readonly MaxClientsBreaker _breaker;
    private readonly NodeSockets _sockets;

    public LostSocketProbeTests()
    {
        _breaker = new MaxClientsBreaker(
            "orders",
            new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(2), MaxBreakDuration = TimeSpan.FromSeconds(10) },
            [Server],
            useTls: false,
            ConnectTimeout,
            _time,
            new FakeLogger(),
            metrics: null,
            random: new FixedRandom(0.0),
            probe: _probe,
            probeBudget: target => _budget.Node(RedisConnectionFactory.Format(target)));
        _sockets = new NodeSockets(_budget, SocketRole.Multiplexer, timeProvider: _time, standInWait: ConnectTimeout, reconnectFailed: _breaker.OnReconnectFailedAsync);

        // The pool's one socket is connected: it holds the server's one slot.
        _sockets.BeforeSocketConnect(Server, ConnectionType.Interactive);
    }

    private ConnectionBudget.NodeBudget Node => _budget.Node("127.0.0.1:6379");

    [Fact]
    public async Task A_loss_reported_while_its_reconnect_is_under_way_is_not_probed_beside_it()
    {
        // StackExchange.Redis reconnects first and reports the loss after.
        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);

        await LoseAsync();

        Assert.Equal(0, _probe.GreetingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
        Assert.Equal(1, Node.Used);
    }

    [Fact]
    public async Task A_loss_reported_after_its_reconnect_connected_changes_nothing_until_ConnectTimeout_has_passed()
    {
        // Reconnected and reported so, then the loss of the socket it replaced arrives late.
        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);
        _sockets.OnSocketRestored(Server, ConnectionType.Interactive);
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        await LoseAsync();
        Assert.Equal(0, Node.Down);
        Assert.Equal(0, _probe.GreetingCalls);

        // Later, with no reconnect under way, a loss is the socket's own: it is down and the probe stands in for it.
        _time.Advance(ConnectTimeout + TimeSpan.FromSeconds(1));
        _sockets.OnSocketLost(Server, ConnectionType.Interactive, connectedAgain: () => false);
        Assert.Equal(1, Node.Down);
        _probe.Greeting = () => new ProbeResult(ProbeOutcome.Silent);
        await LoseAsync();
        Assert.Equal(1, _probe.GreetingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
    }

    [Fact]
    public async Task A_reconnect_waits_while_the_probe_stands_in_for_its_lost_socket()
    {
        var greeting = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _probe.PendingGreeting = greeting.Task;
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(1, Node.Down);

        var classified = LoseAsync();
        Assert.Equal(1, _probe.GreetingCalls);
        Assert.Equal(1, Node.StandIns);
        var reconnect = _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None).AsTask();
        Assert.False(reconnect.IsCompleted);

        // The server has room: the probe's socket closes, then the reconnect goes in its place.
        greeting.SetResult(new ProbeResult(ProbeOutcome.Silent));
        await classified;
        await reconnect;

        Assert.Equal(0, Node.StandIns);
        Assert.Equal(0, Node.Down);
        Assert.Equal(1, Node.Used);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
    }

    [Fact]
    public async Task A_reconnect_waits_for_the_probe_at_most_ConnectTimeout_and_stays_down()
    {
        _probe.PendingGreeting = new TaskCompletionSource<ProbeResult>().Task;
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        _ = LoseAsync();
        var reconnect = _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None).AsTask();

        _time.Advance(ConnectTimeout - TimeSpan.FromMilliseconds(1));
        Assert.False(reconnect.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));

        var refused = await Assert.ThrowsAsync<RedisPoolException>(() => reconnect);
        Assert.Contains("'ConnectTimeout'", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, Node.Down);
        Assert.Equal(1, Node.Used);
    }

    [Fact]
    public async Task A_reconnect_waiting_for_the_probe_honours_cancellation()
    {
        _probe.PendingGreeting = new TaskCompletionSource<ProbeResult>().Task;
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        _ = LoseAsync();
        using var cancel = new CancellationTokenSource();
        var reconnect = _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, cancel.Token).AsTask();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reconnect);
        Assert.Equal(1, Node.Down);
    }

    [Fact]
    public async Task A_reconnect_after_one_that_never_connected_is_held_while_the_probe_stands_in_and_refused_on_max_clients()
    {
        // The first reconnect went and never connected (StackExchange.Redis reports no failed reconnect): the loss of the
        // socket it replaced, reported meanwhile, was not probed.
        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        await LoseAsync();
        Assert.Equal(0, _probe.GreetingCalls);

        // The next reconnect is the sign: the probe stands in for it, finds the server full, and it is held back.
        var greeting = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _probe.PendingGreeting = greeting.Task;
        var reconnect = _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None).AsTask();
        Assert.False(reconnect.IsCompleted);
        Assert.Equal(1, _probe.GreetingCalls);
        Assert.Equal(1, Node.StandIns);
        Assert.Equal(1, Node.Used);

        greeting.SetResult(new ProbeResult(ProbeOutcome.MaxClients, "-ERR max number of clients reached"));

        await Assert.ThrowsAsync<RedisPoolCircuitOpenException>(() => reconnect);
        Assert.Equal(RedisPoolCircuitState.Open, _breaker.State);
        Assert.Equal(1, Node.Down);
        Assert.Equal(0, Node.StandIns);
        Assert.Equal(1, _breaker.ReconnectsSuppressed);
    }

    [Fact]
    public async Task A_reconnect_after_one_that_never_connected_goes_once_the_probe_finds_room()
    {
        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);
        _probe.Greeting = () => new ProbeResult(ProbeOutcome.Silent);

        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);

        Assert.Equal(1, _probe.GreetingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
        Assert.Equal(0, Node.Down);
        Assert.Equal(1, Node.Used);

        // Connected: the next reconnect follows a socket that connected, and goes at once.
        _sockets.OnSocketRestored(Server, ConnectionType.Interactive);
        _sockets.OnSocketLost(Server, ConnectionType.Interactive);
        await _sockets.BeforeSocketConnectAsync(Server, ConnectionType.Interactive, CancellationToken.None);
        Assert.Equal(1, _probe.GreetingCalls);
    }

    private Task LoseAsync() =>
        _breaker.OnSocketFailedAsync(new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed", null, CommandStatus.Unknown), CancellationToken.None, withinBudget: true);

    public async ValueTask DisposeAsync()
    {
        _sockets.Close();
        await _breaker.DisposeAsync();
    }
}
