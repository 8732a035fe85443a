using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Monitoring;

public sealed class ServerMonitorTests
{
    private sealed class FakeReader : IServerCounterReader
    {
        public long ConnectedClients { get; set; }
        public long? MaxClients { get; set; } = 20;
        public bool Available { get; set; } = true;
        public int Reads { get; private set; }

        /// <summary>When set, a cluster: these nodes' counters instead of the one standalone server's.</summary>
        public Dictionary<string, long>? Nodes { get; set; }

        /// <summary>Nodes known but not read (their socket is down).</summary>
        public HashSet<string> Unreadable { get; } = [];

        public Task<ServerReadout?> ReadAsync(CancellationToken cancellationToken)
        {
            Reads++;
            if (!Available)
            {
                return Task.FromResult<ServerReadout?>(null);
            }

            var nodes = Nodes ?? new Dictionary<string, long> { ["127.0.0.1:6379"] = ConnectedClients };
            var readings = nodes
                .Where(node => !Unreadable.Contains(node.Key))
                .Select(node => new ServerCounters(node.Key, node.Value, MaxClients, 3, 9))
                .ToList();
            return Task.FromResult<ServerReadout?>(new ServerReadout(readings, nodes.Keys.ToList()));
        }
    }

    private readonly FakeReader _reader = new();
    private readonly FakeTimeProvider _time = new();
    private readonly RedisPoolMonitorOptions _options = new() { PollInterval = TimeSpan.FromSeconds(15) };
    private readonly List<RedisServerUtilizationEventArgs> _events = [];

    private ServerMonitor CreateMonitor()
    {
        var monitor = new ServerMonitor("orders", _options, _reader, _time, NullLogger.Instance);
        monitor.UtilizationChanged += (_, e) => _events.Add(e);
        return monitor;
    }

    private async Task PollAtAsync(ServerMonitor monitor, long connectedClients)
    {
        _reader.ConnectedClients = connectedClients;
        await monitor.PollOnceAsync();
    }

    [Fact]
    public async Task Warning_critical_and_back_to_normal_are_each_raised_once()
    {
        await using var monitor = CreateMonitor();

        foreach (var clients in new long[] { 2, 10, 15, 17, 17, 18, 17, 20, 20, 19, 18, 18, 2, 2 })
        {
            await PollAtAsync(monitor, clients);
        }

        Assert.Equal(
            [
                (RedisServerUtilizationLevel.Normal, RedisServerUtilizationLevel.Warning, 17L),
                (RedisServerUtilizationLevel.Warning, RedisServerUtilizationLevel.Critical, 20L),
                (RedisServerUtilizationLevel.Critical, RedisServerUtilizationLevel.Normal, 2L),
            ],
            _events.Select(e => (e.PreviousLevel, e.Level, e.Reading.ConnectedClients)));
        Assert.All(_events, e => Assert.Equal("orders", e.PoolName));
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);
    }

    [Fact]
    public async Task A_level_hovering_at_the_threshold_does_not_flap()
    {
        await using var monitor = CreateMonitor();

        foreach (var clients in new long[] { 16, 15, 16, 15, 16, 15, 16 })
        {
            await PollAtAsync(monitor, clients);
        }

        var warning = Assert.Single(_events);
        Assert.Equal(RedisServerUtilizationLevel.Warning, warning.Level);
    }

    [Fact]
    public async Task Falling_below_a_threshold_by_the_hysteresis_leaves_the_level()
    {
        await using var monitor = CreateMonitor();
        await PollAtAsync(monitor, 16);
        await PollAtAsync(monitor, 15);
        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.Level);

        await PollAtAsync(monitor, 14);

        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);
        Assert.Equal(2, _events.Count);
    }

    [Theory]
    [InlineData(RedisServerUtilizationLevel.Normal, 0.79, RedisServerUtilizationLevel.Normal)]
    [InlineData(RedisServerUtilizationLevel.Normal, 0.80, RedisServerUtilizationLevel.Warning)]
    [InlineData(RedisServerUtilizationLevel.Normal, 0.97, RedisServerUtilizationLevel.Critical)]
    [InlineData(RedisServerUtilizationLevel.Warning, 0.76, RedisServerUtilizationLevel.Warning)]
    [InlineData(RedisServerUtilizationLevel.Warning, 0.7499, RedisServerUtilizationLevel.Normal)]
    [InlineData(RedisServerUtilizationLevel.Critical, 0.91, RedisServerUtilizationLevel.Critical)]
    [InlineData(RedisServerUtilizationLevel.Critical, 0.89, RedisServerUtilizationLevel.Warning)]
    [InlineData(RedisServerUtilizationLevel.Critical, 0.50, RedisServerUtilizationLevel.Normal)]
    public void Levels_rise_at_the_threshold_and_fall_five_points_below_it(RedisServerUtilizationLevel current, double utilization, RedisServerUtilizationLevel expected) =>
        Assert.Equal(expected, ServerMonitor.NextLevel(current, utilization, 0.8, 0.95));

    [Fact]
    public async Task Polls_every_interval_once_started()
    {
        await using var monitor = CreateMonitor();
        _reader.ConnectedClients = 17;
        monitor.Start();

        _time.Advance(TimeSpan.FromSeconds(14));
        Assert.Equal(0, _reader.Reads);
        _time.Advance(TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromSeconds(15));

        Assert.Equal(2, _reader.Reads);
        Assert.Equal(17, monitor.Last?.ConnectedClients);
        Assert.Equal(_time.GetUtcNow(), monitor.Last?.Timestamp);
        Assert.Single(_events);
    }

    [Fact]
    public async Task Dispose_stops_the_timer()
    {
        var monitor = CreateMonitor();
        monitor.Start();
        await monitor.DisposeAsync();

        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(0, _reader.Reads);
        Assert.Throws<ObjectDisposedException>(monitor.Start);
    }

    [Fact]
    public async Task Without_a_connection_nothing_is_read_and_the_level_stays()
    {
        await using var monitor = CreateMonitor();
        await PollAtAsync(monitor, 17);
        _reader.Available = false;

        Assert.Null(await monitor.PollOnceAsync());

        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.Level);
        Assert.Equal(17, monitor.Last?.ConnectedClients);
    }

    [Fact]
    public async Task Unknown_maxclients_keeps_the_reading_but_raises_nothing()
    {
        await using var monitor = CreateMonitor();
        _reader.MaxClients = null;

        var reading = await monitor.PollOnceAsync();

        Assert.Null(reading?.Utilization);
        Assert.Equal(3, reading?.BlockedClients);
        Assert.Equal(9, reading?.RejectedConnections);
        Assert.Empty(_events);
    }

    [Fact]
    public async Task A_throwing_subscriber_does_not_stop_the_monitor()
    {
        await using var monitor = CreateMonitor();
        monitor.UtilizationChanged += (_, _) => throw new InvalidOperationException("subscriber bug");

        await PollAtAsync(monitor, 17);
        await PollAtAsync(monitor, 20);

        Assert.Equal(2, _events.Count);
    }

    [Fact]
    public async Task The_pools_level_is_its_worst_nodes_and_each_event_names_its_node()
    {
        await using var monitor = CreateMonitor();
        _reader.Nodes = new() { ["127.0.0.1:7000"] = 2, ["127.0.0.1:7001"] = 2, ["127.0.0.1:7002"] = 2 };
        await monitor.PollOnceAsync();
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);

        _reader.Nodes["127.0.0.1:7001"] = 17;
        var worst = await monitor.PollOnceAsync();

        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.Level);
        Assert.Equal("127.0.0.1:7001", worst?.EndPoint);
        Assert.Equal("127.0.0.1:7001", monitor.Last?.EndPoint);
        var warning = Assert.Single(_events);
        Assert.Equal(("127.0.0.1:7001", RedisServerUtilizationLevel.Normal, RedisServerUtilizationLevel.Warning), (warning.EndPoint, warning.PreviousLevel, warning.Level));
        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.LevelOf("127.0.0.1:7001"));
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.LevelOf("127.0.0.1:7000"));
        Assert.Equal([2L, 17L, 2L], monitor.Nodes.OrderBy(n => n.Key, StringComparer.Ordinal).Select(n => n.Value.ConnectedClients));

        _reader.Nodes["127.0.0.1:7002"] = 20;
        await monitor.PollOnceAsync();

        Assert.Equal(RedisServerUtilizationLevel.Critical, monitor.Level);
        Assert.Equal("127.0.0.1:7002", monitor.Last?.EndPoint);
        Assert.Equal(("127.0.0.1:7002", RedisServerUtilizationLevel.Critical), (_events[^1].EndPoint, _events[^1].Level));
        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.LevelOf("127.0.0.1:7001"));
    }

    [Fact]
    public async Task A_node_recovering_leaves_the_pool_at_the_next_worst_node()
    {
        await using var monitor = CreateMonitor();
        _reader.Nodes = new() { ["127.0.0.1:7000"] = 17, ["127.0.0.1:7001"] = 20 };
        await monitor.PollOnceAsync();
        Assert.Equal(RedisServerUtilizationLevel.Critical, monitor.Level);

        _reader.Nodes["127.0.0.1:7001"] = 2;
        await monitor.PollOnceAsync();

        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.Level);
        Assert.Equal("127.0.0.1:7000", monitor.Last?.EndPoint);
        Assert.Equal(
            [
                ("127.0.0.1:7000", RedisServerUtilizationLevel.Normal, RedisServerUtilizationLevel.Warning),
                ("127.0.0.1:7001", RedisServerUtilizationLevel.Normal, RedisServerUtilizationLevel.Critical),
                ("127.0.0.1:7001", RedisServerUtilizationLevel.Critical, RedisServerUtilizationLevel.Normal),
            ],
            _events.Select(e => (e.EndPoint, e.PreviousLevel, e.Level)));
    }

    [Fact]
    public async Task Each_node_has_its_own_hysteresis()
    {
        await using var monitor = CreateMonitor();
        _reader.Nodes = new() { ["127.0.0.1:7000"] = 16, ["127.0.0.1:7001"] = 16 };
        await monitor.PollOnceAsync();

        // 7000 hovers at the threshold and stays Warning; 7001 falls more than the hysteresis below it and leaves.
        foreach (var (a, b) in new[] { (15L, 15L), (16L, 14L), (15L, 14L) })
        {
            _reader.Nodes["127.0.0.1:7000"] = a;
            _reader.Nodes["127.0.0.1:7001"] = b;
            await monitor.PollOnceAsync();
        }

        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.LevelOf("127.0.0.1:7000"));
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.LevelOf("127.0.0.1:7001"));
        Assert.Equal(RedisServerUtilizationLevel.Warning, monitor.Level);
        Assert.Single(_events, e => e.EndPoint == "127.0.0.1:7000");
        Assert.Equal(2, _events.Count(e => e.EndPoint == "127.0.0.1:7001"));
    }

    [Fact]
    public async Task A_node_not_read_keeps_its_reading_and_level_and_a_node_that_left_is_forgotten()
    {
        await using var monitor = CreateMonitor();
        _reader.Nodes = new() { ["127.0.0.1:7000"] = 2, ["127.0.0.1:7001"] = 20 };
        await monitor.PollOnceAsync();
        var before = monitor.Nodes["127.0.0.1:7001"];

        _time.Advance(TimeSpan.FromSeconds(15));
        _reader.Unreadable.Add("127.0.0.1:7001");
        await monitor.PollOnceAsync();

        Assert.Equal(RedisServerUtilizationLevel.Critical, monitor.Level);
        Assert.Equal(before, monitor.Nodes["127.0.0.1:7001"]);
        Assert.Equal(_time.GetUtcNow(), monitor.Nodes["127.0.0.1:7000"].Timestamp);

        _reader.Nodes.Remove("127.0.0.1:7001");
        await monitor.PollOnceAsync();

        Assert.Equal(["127.0.0.1:7000"], monitor.Nodes.Keys);
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);
        Assert.Equal("127.0.0.1:7000", monitor.Last?.EndPoint);
    }

    [Fact]
    public void The_worst_node_is_the_highest_level_then_the_most_utilized()
    {
        static ServerMonitor.Node Node(string endPoint, long clients, long? max, RedisServerUtilizationLevel level) =>
            new(new RedisServerUtilization(clients, max, 0, 0, DateTimeOffset.UnixEpoch) { EndPoint = endPoint }, level);

        // A node still in Warning by hysteresis outranks a more utilized node that is Normal.
        var worst = ServerMonitor.Worst(
        [
            Node("a:1", 90, 100, RedisServerUtilizationLevel.Normal),
            Node("b:1", 78, 100, RedisServerUtilizationLevel.Warning),
            Node("c:1", 77, 100, RedisServerUtilizationLevel.Warning),
            Node("d:1", 5, null, RedisServerUtilizationLevel.Normal),
        ]);

        Assert.Equal("b:1", worst?.Reading.EndPoint);
        Assert.Null(ServerMonitor.Worst([]));
    }

    [Theory]
    [InlineData("NOPERM User monitor has no permissions to run the 'info' command", true)]
    [InlineData("ERR unknown command 'CONFIG', with args beginning with: 'GET' 'maxclients'", true)]
    [InlineData("ERR unknown subcommand 'GET'", true)]
    [InlineData("LOADING Redis is loading the dataset in memory", false)]
    public void Forbidden_commands_are_recognised(string message, bool forbidden) =>
        Assert.Equal(forbidden, ServerPermissions.IsForbidden(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, message)));

    [Theory]
    [InlineData(RedisErrorKind.NoPermission)]
    [InlineData(RedisErrorKind.UnknownCommand)]
    public void Forbidden_error_kinds_are_recognised(RedisErrorKind kind) =>
        Assert.True(ServerPermissions.IsForbidden(new RedisServerException(kind, CommandFlags.None, "ERR")));

    [Fact]
    public void Admin_mode_refusal_is_forbidden()
    {
        Assert.True(ServerPermissions.IsForbidden(new RedisCommandException("This operation is not available unless admin mode is enabled: INFO")));
        Assert.False(ServerPermissions.IsForbidden(new RedisTimeoutException(CommandFlags.None, "Timeout", CommandStatus.Sent)));
    }
}
