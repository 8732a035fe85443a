using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Breaker;

/// <summary>
/// The pool's own breaker (a standalone server, the master under Sentinel) probes within the server's budget, as a
/// cluster node's breaker does: a free slot, or the slot of one of the pool's sockets that is down; never a socket beyond
/// <c>MaxConnections</c>.
/// </summary>
public sealed class ProbeBudgetTests : IAsyncDisposable
{
    private const string MaxClients = "-ERR max number of clients reached";
    private static readonly EndPoint Server = new IPEndPoint(IPAddress.Loopback, 6379);
    private static readonly TimeSpan Break = TimeSpan.FromSeconds(2);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly FakeProbe _probe = new();
    private readonly ConnectionBudget _budget;
    private readonly MaxClientsBreaker _breaker;
    private readonly List<RedisPoolCircuitStateChangedEventArgs> _events = [];
    private int _usedWhileProbing = -1;

    public ProbeBudgetTests()
    {
        _budget = new ConnectionBudget(2, "127.0.0.1:6379");
        _breaker = new MaxClientsBreaker(
            "orders",
            new RedisPoolBreakerOptions { BreakDuration = Break, MaxBreakDuration = TimeSpan.FromSeconds(10) },
            [Server],
            useTls: false,
            TimeSpan.FromSeconds(1),
            _time,
            new FakeLogger(),
            metrics: null,
            random: new FixedRandom(0.0),
            probe: _probe,
            probeBudget: target => _budget.Node(RedisConnectionFactory.Format(target)));
        _breaker.StateChanged += (_, e) => _events.Add(e);
        _probe.Ping = () =>
        {
            _usedWhileProbing = Node.Used;
            return Task.FromResult(new ProbeResult(ProbeOutcome.MaxClients, MaxClients));
        };
    }

    private ConnectionBudget.NodeBudget Node => _budget.Node("127.0.0.1:6379");

    [Fact]
    public async Task The_probe_holds_a_free_slot_of_the_server_while_it_runs_and_gives_it_back_once()
    {
        Assert.True(_budget.TryReserve(SocketRole.Multiplexer));
        await TripAsync();

        _time.Advance(Break);

        Assert.Equal(1, _probe.PingCalls);
        Assert.Equal(2, _usedWhileProbing);
        Assert.Equal(1, Node.Used);
        Assert.Equal(0, Node.UsedBy(SocketRole.Probe));
        Assert.Equal(RedisPoolCircuitState.Open, _breaker.State);

        // The same on the next interval, and when the probe itself fails with an exception.
        _probe.Ping = () => throw new InvalidOperationException("probe socket failed");
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(2, _probe.PingCalls);
        Assert.Equal(1, Node.Used);
        Assert.Equal(RedisPoolCircuitState.Open, _breaker.State);
    }

    [Fact]
    public async Task A_full_budget_gives_the_probe_the_slot_of_a_socket_of_the_pool_that_is_down()
    {
        var sockets = new NodeSockets(_budget, SocketRole.Multiplexer);
        Assert.True(sockets.TryPrepay(["127.0.0.1:6379"], 2, out _));
        sockets.BeforeSocketConnect(Server, ConnectionType.Interactive);
        sockets.BeforeSocketConnect(Server, ConnectionType.Subscription);
        Assert.Equal(2, Node.Used);

        // StackExchange.Redis lost the interactive socket; its reconnect was refused by the full server.
        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        await TripAsync();
        _time.Advance(Break);

        Assert.Equal(1, _probe.PingCalls);
        Assert.Equal(2, _usedWhileProbing);
        Assert.Equal(2, Node.Used);
        Assert.Equal(0, Node.UsedBy(SocketRole.Probe));

        // Reconnected: both slots are held by open sockets again, and the next probe is not sent.
        sockets.OnSocketRestored(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(1, _probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
        sockets.Close();
        Assert.Equal(0, Node.Used);
    }

    [Fact]
    public async Task With_every_slot_held_by_an_open_socket_it_closes_unprobed_and_the_next_refusal_reopens_it_for_the_doubled_break()
    {
        Assert.True(_budget.TryReserve(SocketRole.Multiplexer, 2));
        await TripAsync();

        _time.Advance(Break);

        Assert.Equal(0, _probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
        Assert.Equal(2, Node.Used);
        Assert.True(_breaker.Unproven);
        var closed = _events[^1];
        Assert.Contains("not probed", closed.Reason, StringComparison.Ordinal);
        Assert.Contains("2 of 2 sockets in use", closed.Reason, StringComparison.Ordinal);
        Assert.Contains("opens the breaker again for 4.0 s", closed.Reason, StringComparison.Ordinal);

        // One socket is given back and one new connect is tried in its place: the server refuses it, so the breaker
        // opens again at once, for the doubled break.
        _budget.Release(SocketRole.Multiplexer);
        await TripAsync();
        var reopened = _events[^1];
        Assert.Equal(RedisPoolCircuitState.Open, reopened.State);
        Assert.Equal(TimeSpan.FromSeconds(4), reopened.RetryAfter);
        Assert.False(_breaker.Unproven);

        // It waits out that doubled break before its probe, which now has a free slot.
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, _probe.PingCalls);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, _probe.PingCalls);
        Assert.Equal(2, _usedWhileProbing);
        Assert.Equal(1, Node.Used);
    }

    [Fact]
    public async Task A_socket_opened_after_an_unprobed_close_shows_room_and_the_next_trip_starts_from_the_configured_break()
    {
        Assert.True(_budget.TryReserve(SocketRole.Multiplexer, 2));
        await TripAsync();
        _time.Advance(Break);
        Assert.True(_breaker.Unproven);
        Assert.Equal(TimeSpan.FromSeconds(4), _breaker.BreakDuration);

        _breaker.OnSocketOpened();

        Assert.False(_breaker.Unproven);
        Assert.Equal(Break, _breaker.BreakDuration);
        _budget.Release(SocketRole.Multiplexer);
        await TripAsync();
        Assert.Equal(Break, _events[^1].RetryAfter);
    }

    [Fact]
    public async Task A_lowered_fleet_limit_leaves_no_room_for_the_probe_and_counts_no_rejection()
    {
        Assert.True(_budget.TryReserve(SocketRole.Multiplexer));
        _budget.SetLimit(1);
        await TripAsync();

        _time.Advance(Break);

        Assert.Equal(0, _probe.PingCalls);
        Assert.Equal(RedisPoolCircuitState.Closed, _breaker.State);
        Assert.Equal(0, _budget.Rejected);

        // The share grows back: the slot above the one held is the probe's.
        _budget.SetLimit(2);
        await TripAsync();
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(1, _probe.PingCalls);
        Assert.Equal(2, _usedWhileProbing);
        Assert.Equal(1, Node.Used);
    }

    [Fact]
    public async Task Disposal_during_a_probe_gives_its_slot_back()
    {
        var answer = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _probe.Ping = () =>
        {
            _usedWhileProbing = Node.Used;
            return answer.Task;
        };
        await TripAsync();

        _time.Advance(Break);
        Assert.Equal(RedisPoolCircuitState.HalfOpen, _breaker.State);
        Assert.Equal(1, _usedWhileProbing);
        Assert.Equal(1, Node.UsedBy(SocketRole.Probe));

        await _breaker.DisposeAsync();

        Assert.Equal(0, Node.Used);
        Assert.Equal(0, Node.UsedBy(SocketRole.Probe));
        answer.SetResult(new ProbeResult(ProbeOutcome.Replied, "+PONG"));
        Assert.Equal(0, Node.Used);
    }

    [Fact]
    public void A_lost_socket_counts_as_down_once_until_it_reconnects_or_its_connection_closes()
    {
        var sockets = new NodeSockets(_budget, SocketRole.Lease, timeProvider: _time, standInWait: TimeSpan.FromSeconds(1));
        sockets.BeforeSocketConnect(Server, ConnectionType.Interactive);

        // A socket this connection never held is not its to count.
        sockets.OnSocketLost(Server, ConnectionType.Subscription);
        Assert.Equal(0, Node.Down);

        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(1, Node.Down);

        // Its reconnect passes the tunnel: from then on it counts as open.
        sockets.BeforeSocketConnect(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);
        sockets.OnSocketRestored(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);

        // A loss reported within ConnectTimeout of the reconnect may be the socket it replaced; a later one is its own.
        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);
        _time.Advance(TimeSpan.FromSeconds(2));
        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(1, Node.Down);
        sockets.Close();
        sockets.OnSocketLost(Server, ConnectionType.Interactive);
        Assert.Equal(0, Node.Down);
        Assert.Equal(0, Node.Used);
    }

    [Fact]
    public async Task A_server_move_forgets_an_unprobed_close()
    {
        Assert.True(_budget.TryReserve(SocketRole.Multiplexer, 2));
        await TripAsync();
        _time.Advance(Break);
        Assert.True(_breaker.Unproven);

        _breaker.OnServerMoved("the pool moved to 127.0.0.1:6380");

        Assert.False(_breaker.Unproven);
        Assert.Equal(Break, _breaker.BreakDuration);
    }

    public ValueTask DisposeAsync() => _breaker.DisposeAsync();

    private async Task TripAsync()
    {
        _probe.Greeting = () => new ProbeResult(ProbeOutcome.MaxClients, MaxClients);
        await _breaker.OnSocketFailedAsync(new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed (0-sent) last: HELLO", null, CommandStatus.Unknown), CancellationToken.None);
        Assert.Equal(RedisPoolCircuitState.Open, _breaker.State);
    }
}
