namespace RedisPoolKit.Tests.Connections;

public sealed class ConnectionBudgetTests
{
    [Fact]
    public void Reserves_up_to_the_cap_and_counts_by_role()
    {
        var budget = new ConnectionBudget(3);

        Assert.True(budget.TryReserve(SocketRole.Multiplexer));
        Assert.True(budget.TryReserve(SocketRole.Lease, 2));
        Assert.False(budget.TryReserve(SocketRole.Lease));

        Assert.Equal(3, budget.Used);
        Assert.Equal(1, budget.UsedBy(SocketRole.Multiplexer));
        Assert.Equal(2, budget.UsedBy(SocketRole.Lease));
        Assert.Equal(1, budget.Rejected);
        Assert.Contains("3 of 3 sockets", budget.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Released_slots_can_be_reserved_again()
    {
        var budget = new ConnectionBudget(1);
        Assert.True(budget.TryReserve(SocketRole.Lease));

        budget.Release(SocketRole.Lease);

        Assert.Equal(0, budget.Used);
        Assert.True(budget.TryReserve(SocketRole.Multiplexer));
    }

    [Fact]
    public async Task Never_exceeds_the_cap_under_any_race()
    {
        var budget = new ConnectionBudget(4);
        var held = 0;
        var peak = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 20_000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, (i, _) =>
        {
            var role = (SocketRole)(i % 3);
            if (budget.TryReserve(role))
            {
                var now = Interlocked.Increment(ref held);
                var seen = Volatile.Read(ref peak);
                while (now > seen && Interlocked.CompareExchange(ref peak, now, seen) != seen)
                {
                    seen = Volatile.Read(ref peak);
                }

                Interlocked.Decrement(ref held);
                budget.Release(role);
            }

            return ValueTask.CompletedTask;
        });

        Assert.InRange(peak, 1, 4);
        Assert.Equal(0, budget.Used);
    }
}

public sealed class NodeBudgetTests
{
    private static readonly System.Net.EndPoint A = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7000);
    private static readonly System.Net.EndPoint B = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7001);

    [Fact]
    public void Each_node_is_capped_on_its_own_and_the_busiest_is_reported()
    {
        var budget = new ConnectionBudget(2, "127.0.0.1:7000");

        Assert.True(budget.TryReserve("127.0.0.1:7001", SocketRole.Lease, 2));
        Assert.False(budget.TryReserve("127.0.0.1:7001", SocketRole.Multiplexer));
        Assert.True(budget.TryReserve(SocketRole.Multiplexer));

        Assert.Equal(1, budget.Node("127.0.0.1:7000").Used);
        Assert.Equal(2, budget.Used);
        Assert.Equal(2, budget.UsedBy(SocketRole.Lease));
        Assert.Equal(1, budget.Rejected);
        Assert.StartsWith("127.0.0.1:7001: 2 of 2 sockets", budget.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_connection_holds_one_slot_per_node_and_type_however_often_it_reconnects()
    {
        var budget = new ConnectionBudget(3, "127.0.0.1:7000");
        var sockets = new NodeSockets(budget, SocketRole.Multiplexer);
        Assert.True(sockets.TryPrepay(["127.0.0.1:7000"], 1, out _));

        for (var attempt = 0; attempt < 5; attempt++)
        {
            sockets.BeforeSocketConnect(A, StackExchange.Redis.ConnectionType.Interactive);
            sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive);
        }

        Assert.Equal(1, budget.Node("127.0.0.1:7000").Used);
        Assert.Equal(1, budget.Node("127.0.0.1:7001").Used);
        Assert.Equal(["127.0.0.1:7000", "127.0.0.1:7001"], sockets.Nodes.Order(StringComparer.Ordinal));

        sockets.Close();
        sockets.Close();
        Assert.Equal(0, budget.Node("127.0.0.1:7000").Used);
        Assert.Equal(0, budget.Node("127.0.0.1:7001").Used);
        Assert.Throws<ObjectDisposedException>(() => sockets.BeforeSocketConnect(A, StackExchange.Redis.ConnectionType.Interactive));
    }

    [Fact]
    public void A_socket_to_a_full_node_is_refused_before_it_opens_and_says_which_node()
    {
        var budget = new ConnectionBudget(1, "127.0.0.1:7000");
        Assert.True(budget.TryReserve("127.0.0.1:7001", SocketRole.Lease));
        string? refusedNode = null;
        var sockets = new NodeSockets(budget, SocketRole.Multiplexer, refused: (node, _) => refusedNode = node);

        var refused = Assert.Throws<RedisPoolExhaustedException>(() => sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive));

        Assert.Equal("127.0.0.1:7001", refusedNode);
        Assert.Contains("127.0.0.1:7001: 1 of 1 sockets", refused.Message + " " + sockets.LastRefusal, StringComparison.Ordinal);
        Assert.Contains("'MaxConnections' (currently 1)", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, budget.Node("127.0.0.1:7001").Used);
        sockets.Close();
        Assert.Equal(1, budget.Node("127.0.0.1:7001").Used);
    }

    [Fact]
    public void Prepaying_is_all_or_nothing_across_nodes()
    {
        var budget = new ConnectionBudget(1, "127.0.0.1:7000");
        Assert.True(budget.TryReserve("127.0.0.1:7002", SocketRole.Lease));
        var sockets = new NodeSockets(budget, SocketRole.Multiplexer);

        Assert.False(sockets.TryPrepay(["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"], 1, out var full));

        Assert.Equal("127.0.0.1:7002", full);
        Assert.Equal(0, budget.Node("127.0.0.1:7000").Used);
        Assert.Equal(0, budget.Node("127.0.0.1:7001").Used);
    }

    [Fact]
    public void Sentinel_sockets_count_on_their_sentinel_but_the_pool_wide_figures_are_the_masters()
    {
        // Under Sentinel the first configured endpoint is a sentinel; the default node moves to the master once it is known.
        var budget = new ConnectionBudget(4, "127.0.0.1:26379");
        Assert.True(budget.TryReserve("127.0.0.1:26379", SocketRole.Sentinel));
        Assert.True(budget.TryReserve("127.0.0.1:26380", SocketRole.Sentinel));
        budget.MoveDefault("127.0.0.1:6379");
        Assert.True(budget.TryReserve("127.0.0.1:6379", SocketRole.Multiplexer));

        Assert.Equal(1, budget.Node("127.0.0.1:26379").Used);
        Assert.Equal(1, budget.Node("127.0.0.1:26379").UsedBy(SocketRole.Sentinel));
        Assert.Equal(1, budget.Used);
        Assert.Equal(1, budget.UsedBy(SocketRole.Multiplexer));
        Assert.StartsWith("127.0.0.1:6379: 1 of 4 sockets in use: 1 multiplexer", budget.Describe(), StringComparison.Ordinal);
        Assert.Contains("1 sentinel", budget.Node("127.0.0.1:26380").Describe(), StringComparison.Ordinal);

        // Before any server socket, the sentinels' do not make the pool look busy.
        budget.Release("127.0.0.1:6379", SocketRole.Multiplexer);
        Assert.Equal(0, budget.Used);
        Assert.Equal(0, budget.UsedBy(SocketRole.Multiplexer));
    }

    [Fact]
    public async Task A_connection_reserved_on_the_default_node_gives_its_slots_back_there_after_the_default_moved()
    {
        var budget = new ConnectionBudget(2, "127.0.0.1:6379");
        Assert.True(budget.TryReserve(SocketRole.Lease));
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var configuration = new StackExchange.Redis.ConfigurationOptions { EndPoints = { { System.Net.IPAddress.Loopback, closedPort } }, AbortOnConnectFail = false, ConnectTimeout = 200, ConnectRetry = 0 };
        var multiplexer = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(configuration);
        var connection = new PooledConnection(multiplexer, budget, SocketRole.Lease, 0, 1, "lease0", 0);

        budget.MoveDefault("127.0.0.1:6380");
        await connection.DisposeAsync();

        Assert.Equal(0, budget.Node("127.0.0.1:6379").Used);
        Assert.Equal(0, budget.Node("127.0.0.1:6380").Used);
    }

    [Fact]
    public void The_probe_takes_a_free_slot_of_its_node_and_gives_it_back_once()
    {
        var budget = new ConnectionBudget(2, "127.0.0.1:7000");
        var node = budget.Node("127.0.0.1:7001");
        Assert.True(node.TryReserve(SocketRole.Multiplexer));

        var slot = node.TakeProbeSlot();

        Assert.NotNull(slot);
        Assert.True(slot.Reserved);
        Assert.Equal(2, node.Used);
        Assert.Equal(1, node.UsedBy(SocketRole.Probe));
        Assert.False(node.TryReserve(SocketRole.Lease));
        slot.Dispose();
        slot.Dispose();
        Assert.Equal(1, node.Used);
        Assert.Equal(0, node.UsedBy(SocketRole.Probe));
    }

    [Fact]
    public void A_full_node_gives_the_probe_a_slot_only_in_place_of_a_socket_of_the_pool_that_is_down()
    {
        var budget = new ConnectionBudget(1, "127.0.0.1:7000");
        var gate = new SwitchGate();
        var sockets = new NodeSockets(budget, SocketRole.Multiplexer, gate);
        sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive);
        var node = budget.Node("127.0.0.1:7001");

        // Its one slot is held by a socket that is up: no room for a probe, and that is not a rejection of a socket.
        Assert.Null(node.TakeProbeSlot());
        Assert.Equal(0, node.Rejected);

        // The socket dropped and its reconnect was held back by the node's breaker: the probe stands in for it.
        gate.State = RedisPoolCircuitState.HalfOpen;
        Assert.Throws<RedisPoolCircuitOpenException>(() => sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive));
        Assert.Throws<RedisPoolCircuitOpenException>(() => sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive));
        Assert.Equal(1, node.Down);
        var slot = node.TakeProbeSlot();
        Assert.NotNull(slot);
        Assert.False(slot.Reserved);
        Assert.Equal(1, node.Used);
        slot.Dispose();
        Assert.Equal(1, node.Used);

        // Let through again, the socket is being opened: it counts as up.
        gate.State = null;
        sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive);
        Assert.Equal(0, node.Down);
        Assert.Null(node.TakeProbeSlot());

        gate.State = RedisPoolCircuitState.Open;
        Assert.Throws<RedisPoolCircuitOpenException>(() => sockets.BeforeSocketConnect(B, StackExchange.Redis.ConnectionType.Interactive));
        sockets.Close();
        Assert.Equal(0, node.Down);
        Assert.Equal(0, node.Used);
    }

    private sealed class SwitchGate : INodeGate
    {
        public RedisPoolCircuitState? State { get; set; }

        public RedisPoolCircuitState? Refuses(string node) => State;

        public Exception? Refusal(string node, string what) => State is null ? null : new RedisPoolCircuitOpenException(what, TimeSpan.Zero, null);
    }
}
