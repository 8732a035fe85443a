using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Monitoring;

// Each test changes the server's client count: its own server, and no parallel neighbours on 2 cores.
[Collection(FaultCollection.Name)]
public sealed class ServerMonitorIntegrationTests
{
    private static readonly TimeSpan s_deadline = TimeSpan.FromSeconds(30);

    private static async Task<ConnectionMultiplexer> ConnectAsync(RedisServer server, string? user = null, string? password = null)
    {
        var config = ConfigurationOptions.Parse($"127.0.0.1:{server.Port}");
        config.AllowAdmin = true;
        config.Protocol = RedisProtocol.Resp3;
        config.SharedSubscriptionConnection = true;
        config.User = user;
        config.Password = password;
        return await ConnectionMultiplexer.ConnectAsync(config);
    }

    private static async Task<long> ConnectedClientsAsync(IConnectionMultiplexer multiplexer)
    {
        var info = await multiplexer.GetServers()[0].InfoAsync("clients");
        return long.Parse(info.SelectMany(g => g).First(p => p.Key == "connected_clients").Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task FillToAsync(IConnectionMultiplexer multiplexer, List<TcpClient> sockets, RedisServer server, long target)
    {
        var stopwatch = Stopwatch.StartNew();
        while (await ConnectedClientsAsync(multiplexer) < target)
        {
            Assert.True(stopwatch.Elapsed < s_deadline, $"could not fill the server to {target} clients");
            var before = await ConnectedClientsAsync(multiplexer);
            sockets.Add(await server.ConnectRawAsync());
            await WaitForAsync(async () => await ConnectedClientsAsync(multiplexer) > before, "the server to count the new socket");
        }
    }

    private static Task WaitForAsync(Func<Task<bool>> condition, string what) => Eventually.TrueAsync(condition, s_deadline, what);

    private static Task WaitForReadingsAsync(ServerMonitor monitor, int count)
    {
        var seen = new HashSet<DateTimeOffset>();
        return WaitForAsync(() =>
        {
            if (monitor.Last is { } last)
            {
                seen.Add(last.Timestamp);
            }

            return Task.FromResult(seen.Count > count);
        }, $"{count} monitor readings");
    }

    [Fact]
    public async Task Filling_to_17_warns_to_20_is_critical_and_freeing_returns_to_normal_each_once()
    {
        await using var server = await RedisServer.StartAsync(new RedisServerOptions { Arguments = { "--maxclients", "20" } });
        await using var multiplexer = await ConnectAsync(server);
        using var logs = new CapturingLoggerProvider();
        var events = new ConcurrentQueue<RedisServerUtilizationEventArgs>();
        var options = new RedisPoolMonitorOptions { PollInterval = TimeSpan.FromMilliseconds(50) };
        await using var monitor = new ServerMonitor("it", options, () => [multiplexer], TimeProvider.System, logs.CreateLogger("monitor"));
        monitor.UtilizationChanged += (_, e) => events.Enqueue(e);
        monitor.Start();
        var sockets = new List<TcpClient>();
        try
        {
            await WaitForReadingsAsync(monitor, 2);
            Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);
            Assert.Equal(20, monitor.Last?.MaxClients);

            await FillToAsync(multiplexer, sockets, server, 15);
            await WaitForReadingsAsync(monitor, 5);
            Assert.Empty(events);

            await FillToAsync(multiplexer, sockets, server, 17);
            await WaitForAsync(() => Task.FromResult(monitor.Level == RedisServerUtilizationLevel.Warning), "the warning");
            await WaitForReadingsAsync(monitor, 5);

            await FillToAsync(multiplexer, sockets, server, 20);
            await WaitForAsync(() => Task.FromResult(monitor.Level == RedisServerUtilizationLevel.Critical), "the critical level");
            await WaitForReadingsAsync(monitor, 5);
            Assert.Equal(20, monitor.Last?.ConnectedClients);

            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            sockets.Clear();
            await WaitForAsync(() => Task.FromResult(monitor.Level == RedisServerUtilizationLevel.Normal), "the return to normal");
            await WaitForReadingsAsync(monitor, 5);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        Assert.Equal(
            [
                (RedisServerUtilizationLevel.Normal, RedisServerUtilizationLevel.Warning),
                (RedisServerUtilizationLevel.Warning, RedisServerUtilizationLevel.Critical),
                (RedisServerUtilizationLevel.Critical, RedisServerUtilizationLevel.Normal),
            ],
            events.Select(e => (e.PreviousLevel, e.Level)));
        var readings = events.Select(e => e.Reading.Utilization!.Value).ToArray();
        Assert.InRange(readings[0], 0.8, 0.85);
        Assert.InRange(readings[1], 0.95, 1.0);
        Assert.True(readings[2] < 0.75);
        Assert.Equal(3, logs.Lines.Count(l => l.EventId.Id == 301));
    }

    [Fact]
    public async Task Reading_over_the_pools_socket_opens_none_and_sees_rejections()
    {
        await using var server = await RedisServer.StartAsync(new RedisServerOptions { Arguments = { "--maxclients", "4" } });
        await using var multiplexer = await ConnectAsync(server);
        await using var monitor = new ServerMonitor("it", new RedisPoolMonitorOptions(), () => [multiplexer], TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var before = await monitor.PollOnceAsync();
        var sockets = new List<TcpClient>();
        try
        {
            // Fill what the harness's admin connection and ours left, then one more that the server refuses.
            await FillToAsync(multiplexer, sockets, server, 4);
            sockets.Add(await server.ConnectRawAsync());

            await WaitForAsync(async () => (await monitor.PollOnceAsync())?.RejectedConnections > before?.RejectedConnections, "the rejection to be counted");
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        var reading = monitor.Last!.Value;
        Assert.Equal(4, reading.ConnectedClients);
        Assert.Equal(4, reading.MaxClients);
        Assert.Equal(RedisServerUtilizationLevel.Critical, monitor.Level);
    }

    [Fact]
    public async Task Where_INFO_is_forbidden_the_monitor_says_so_once_and_carries_on()
    {
        await using var server = await RedisServer.StartAsync();
        await using (var admin = await ConnectAsync(server))
        {
            await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", "app", "on", ">app-pass", "~*", "&*", "+@all", "-info", "-config");
        }

        await using var multiplexer = await ConnectAsync(server, "app", "app-pass");
        using var logs = new CapturingLoggerProvider();
        await using var monitor = new ServerMonitor("it", new RedisPoolMonitorOptions(), () => [multiplexer], TimeProvider.System, logs.CreateLogger("monitor"));

        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await monitor.PollOnceAsync());
        }

        // Without INFO the monitor can read nothing: it turns itself off once, naming the ACL rule, and never
        // claims it lacks a connection.
        var forbidden = Assert.Single(logs.Lines, l => l.EventId.Id == 501);
        Assert.Equal(LogLevel.Warning, forbidden.Level);
        Assert.Contains("INFO clients", forbidden.Text, StringComparison.Ordinal);
        Assert.Contains("ACL SETUSER <user> +info", forbidden.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == 303);
        Assert.NotNull(monitor.Unavailable);
        Assert.Equal(RedisServerUtilizationLevel.Normal, monitor.Level);
    }

    [Fact]
    public async Task Where_only_INFO_stats_is_allowed_without_CONFIG_the_monitor_still_reads_clients()
    {
        await using var server = await RedisServer.StartAsync(new RedisServerOptions { Arguments = { "--maxclients", "50" } });
        await using (var admin = await ConnectAsync(server))
        {
            await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", "app", "on", ">app-pass", "~*", "&*", "+@all", "-config");
        }

        await using var multiplexer = await ConnectAsync(server, "app", "app-pass");
        using var logs = new CapturingLoggerProvider();
        await using var monitor = new ServerMonitor("it", new RedisPoolMonitorOptions(), () => [multiplexer], TimeProvider.System, logs.CreateLogger("monitor"));

        var reading = await monitor.PollOnceAsync();

        Assert.Equal(50, reading?.MaxClients);
        Assert.True(reading?.ConnectedClients >= 1);
        Assert.DoesNotContain(logs.Lines, l => l.EventId.Id == 300);
    }
}
