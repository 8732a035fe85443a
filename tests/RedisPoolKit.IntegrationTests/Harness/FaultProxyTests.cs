using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Harness;

[Collection(FaultCollection.Name)]
public sealed class FaultProxyTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Silence = TimeSpan.FromMilliseconds(400);

    [Fact]
    public async Task Forwards_both_ways_and_counts_connections_and_bytes()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);

        using (var client = await ConnectAsync(proxy))
        {
            Assert.Equal("+PONG", await CommandAsync(client, "PING"));
            Assert.Equal(1, proxy.Accepted);
            Assert.Equal(1, proxy.Active);

            // Each pump counts the bytes once it has forwarded them, so the reply can reach the client before the
            // count is updated: wait for the counts, then check they are exact.
            await Eventually.TrueAsync(() => proxy.BytesToServer >= 6 && proxy.BytesToClient >= 7, Deadline, "the proxy to count the bytes it forwarded");
            Assert.Equal(6, proxy.BytesToServer);
            Assert.Equal(7, proxy.BytesToClient);
        }

        await Eventually.TrueAsync(() => proxy.Active == 0, Deadline, "the proxy should drop a connection its client closed");
        await using var mux = await ConnectionMultiplexer.ConnectAsync(proxy.ConnectionString);
        await mux.GetDatabase().StringSetAsync("through-proxy", "yes");
        Assert.Equal("yes", await server.Admin.GetDatabase().StringGetAsync("through-proxy"));
    }

    [Fact]
    public async Task Latency_delays_each_direction_at_least_as_configured()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var client = await ConnectAsync(proxy);
        var latency = TimeSpan.FromMilliseconds(100);

        proxy.Latency = latency;
        var roundTrip = Stopwatch.StartNew();
        Assert.Equal("+PONG", await CommandAsync(client, "PING"));
        roundTrip.Stop();

        Output.WriteLine($"round trip with {latency.TotalMilliseconds} ms latency each way: {roundTrip.Elapsed.TotalMilliseconds:0.0} ms");
        Assert.True(roundTrip.Elapsed >= 2 * latency, $"round trip {roundTrip.Elapsed.TotalMilliseconds} ms < 2 x {latency.TotalMilliseconds} ms");
        Assert.Equal(latency, proxy.Latency);
    }

    [Fact]
    public async Task Bandwidth_limits_each_direction_to_the_configured_rate_and_zero_lifts_it()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        await using var mux = await ConnectionMultiplexer.ConnectAsync(proxy.ConnectionString);
        var db = mux.GetDatabase();
        await server.Admin.GetDatabase().StringSetAsync("bandwidth:big", new string('x', 64 * 1024));

        proxy.SetBandwidth(64 * 1024);
        var throttled = Stopwatch.StartNew();
        Assert.Equal(64 * 1024, ((string?)await db.StringGetAsync("bandwidth:big"))?.Length);
        throttled.Stop();
        proxy.SetBandwidth(0);
        var free = Stopwatch.StartNew();
        Assert.Equal(64 * 1024, ((string?)await db.StringGetAsync("bandwidth:big"))?.Length);
        free.Stop();

        // A limit can only slow: the lower bound holds on any machine; the unthrottled read is for the output.
        Output.WriteLine($"64 KB at 64 KB/s: {throttled.Elapsed.TotalMilliseconds:0} ms; unthrottled: {free.Elapsed.TotalMilliseconds:0.0} ms");
        Assert.True(throttled.Elapsed >= TimeSpan.FromMilliseconds(900), $"64 KB at 64 KB/s took {throttled.Elapsed.TotalMilliseconds:0} ms");
        Assert.Contains("bandwidth=unlimited", proxy.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Blackhole_for_new_connections_accepts_but_never_answers_while_existing_ones_keep_working()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var existing = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));

        proxy.SetFault(ProxyFault.Blackhole, FaultScope.NewConnections);
        using var blackholed = await ConnectAsync(proxy);
        await SendAsync(blackholed, "PING");

        await AssertSilentAsync(blackholed);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));
        Assert.Equal(2, proxy.Accepted);
        Assert.Equal(1, (await server.ClientListAsync()).Count(c => c.Name != RedisServer.AdminClientName));
    }

    [Fact]
    public async Task Blackhole_on_all_connections_silences_an_established_connection()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var client = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(client, "PING"));
        var toServer = proxy.BytesToServer;

        proxy.SetFault(ProxyFault.Blackhole);
        await SendAsync(client, "PING");

        await AssertSilentAsync(client);
        Assert.Equal(toServer, proxy.BytesToServer);
    }

    [Fact]
    public async Task Pause_holds_traffic_until_cleared()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var client = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(client, "PING"));

        proxy.SetFault(ProxyFault.Pause);
        await SendAsync(client, "PING");
        var reply = ReadLineAsync(client);
        Assert.NotSame(reply, await Task.WhenAny(reply, Task.Delay(Silence)));

        proxy.SetFault(ProxyFault.None);
        Assert.Equal("+PONG", await reply.WaitAsync(Deadline));
    }

    [Fact]
    public async Task Reset_surfaces_as_a_socket_error_on_existing_and_new_connections()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var existing = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));

        proxy.SetFault(ProxyFault.Reset);

        var onExisting = await Assert.ThrowsAsync<SocketException>(() => ReceiveAsync(existing));
        Assert.Equal(SocketError.ConnectionReset, onExisting.SocketErrorCode);
        var onNew = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            // The RST may arrive before the client's connect completes or after: both are a reset.
            using var fresh = await ConnectAsync(proxy);
            await ReceiveAsync(fresh);
        });
        Assert.Equal(SocketError.ConnectionReset, onNew.SocketErrorCode);
        await Eventually.TrueAsync(() => proxy.Active == 0, Deadline, "reset connections should be gone");
    }

    [Fact]
    public async Task ResetConnections_aborts_current_connections_only()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var existing = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));

        proxy.ResetConnections();

        var error = await Assert.ThrowsAsync<SocketException>(() => ReceiveAsync(existing));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        using var fresh = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(fresh, "PING"));
    }

    [Fact]
    public async Task Close_after_n_bytes_delivers_exactly_n_bytes_then_closes()
    {
        var server = await StartServerAsync();
        await server.Admin.GetDatabase().StringSetAsync("big", new string('x', 1000));
        var proxy = StartProxy(server);

        proxy.CloseAfter(10, FaultScope.NewConnections);
        using var client = await ConnectAsync(proxy);
        await SendAsync(client, "GET big");

        var received = new List<byte>();
        var buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(Deadline);
        int read;
        while ((read = await client.ReceiveAsync(buffer, deadline.Token)) > 0)
        {
            received.AddRange(buffer.AsSpan(0, read));
        }

        Assert.Equal("$1000\r\nxxx", Encoding.ASCII.GetString([.. received]));
        Assert.Equal(10, proxy.BytesToClient);
    }

    [Fact]
    public async Task Refuse_rejects_new_connections_until_healed_on_the_same_port()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        using var existing = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));

        proxy.SetFault(ProxyFault.Refuse, FaultScope.NewConnections);

        var refused = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(proxy));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal("+PONG", await CommandAsync(existing, "PING"));
        proxy.Heal();
        using var after = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(after, "PING"));
        Assert.Equal(2, proxy.Accepted);
    }

    [Fact]
    public async Task Disposal_closes_every_socket_on_both_sides()
    {
        var server = await RedisServer.StartAsync();
        await using var _ = server;
        var proxy = FaultProxy.Start(server.EndPoint);
        using var client = await ConnectAsync(proxy);
        using var paused = await ConnectAsync(proxy);
        Assert.Equal("+PONG", await CommandAsync(client, "PING"));
        proxy.SetFault(ProxyFault.Pause);
        await SendAsync(paused, "PING");

        await proxy.DisposeAsync().AsTask().WaitAsync(Deadline);

        Assert.Equal(0, proxy.Active);
        var refused = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(proxy));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await Eventually.TrueAsync(
            async () => (await server.ClientListAsync()).All(c => c.Name == RedisServer.AdminClientName),
            Deadline,
            "the server should see no proxied client once the proxy is disposed");
        Output.WriteLine(proxy.ToString());
    }

    private static async Task<Socket> ConnectAsync(FaultProxy proxy)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(proxy.EndPoint);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task SendAsync(Socket socket, string command) =>
        await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\r\n"));

    private static async Task<string> CommandAsync(Socket socket, string command)
    {
        await SendAsync(socket, command);
        return await ReadLineAsync(socket).WaitAsync(Deadline);
    }

    private static async Task<string> ReadLineAsync(Socket socket)
    {
        var received = new StringBuilder();
        var buffer = new byte[1];
        while (!received.ToString().EndsWith("\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(buffer) == 0)
            {
                break;
            }

            received.Append((char)buffer[0]);
        }

        return received.ToString().TrimEnd('\r', '\n');
    }

    private static async Task<int> ReceiveAsync(Socket socket)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        return await socket.ReceiveAsync(new byte[64], deadline.Token);
    }

    private static async Task AssertSilentAsync(Socket socket)
    {
        var reply = ReadLineAsync(socket);
        var first = await Task.WhenAny(reply, Task.Delay(Silence));
        Assert.NotSame(reply, first);
    }
}
