using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Harness;

[Collection(FaultCollection.Name)]
public sealed class RedisServerTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Started_server_answers_ping_on_its_connection_string()
    {
        var server = await StartServerAsync();

        Assert.Equal(RedisServerBackend.Process, server.Backend);
        Assert.Equal(IPAddress.Loopback, server.EndPoint.Address);
        Assert.Equal($"127.0.0.1:{server.Port}", server.ConnectionString);
        Assert.True(await server.Admin.GetServer(server.EndPoint).PingAsync() >= TimeSpan.Zero);
        await using var client = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString);
        await client.GetDatabase().StringSetAsync("k", "v");
        Assert.Equal("v", await client.GetDatabase().StringGetAsync("k"));
        Assert.Equal("+PONG", await RawCommandAsync(server, "PING"));
    }

    [Fact]
    public async Task Server_runs_isolated_without_persistence()
    {
        var server = await StartServerAsync();

        var save = await server.Admin.GetServer(server.EndPoint).ConfigGetAsync("save");
        var appendonly = await server.Admin.GetServer(server.EndPoint).ConfigGetAsync("appendonly");
        Assert.Equal(string.Empty, save.Single().Value);
        Assert.Equal("no", appendonly.Single().Value);
        Assert.Equal(server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), (await server.InfoAsync("server"))["tcp_port"]);
    }

    [Fact]
    public async Task Killed_server_refuses_connections_and_its_process_is_gone()
    {
        var server = await StartServerAsync();
        var pid = server.ProcessId!.Value;

        await server.KillAsync();

        var refused = await Assert.ThrowsAsync<SocketException>(async () => (await server.ConnectRawAsync()).Dispose());
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.False(IsRunningRedisServer(pid), $"redis-server pid {pid} should be gone after KillAsync");
    }

    [Fact]
    public async Task Restarted_server_answers_ping_on_the_same_port()
    {
        var server = await StartServerAsync(Options("--maxclients", "77"));
        var port = server.Port;
        await server.KillAsync();

        await server.RestartAsync();

        Assert.Equal(port, server.Port);
        Assert.Equal("+PONG", await RawCommandAsync(server, "PING"));
        Assert.Equal("77", (await server.Admin.GetServer(server.EndPoint).ConfigGetAsync("maxclients")).Single().Value);
    }

    [Fact]
    public async Task Stopped_server_exits_and_refuses_connections()
    {
        var server = await StartServerAsync();
        var pid = server.ProcessId!.Value;

        await server.StopAsync();

        Assert.False(IsRunningRedisServer(pid));
        var refused = await Assert.ThrowsAsync<SocketException>(async () => (await server.ConnectRawAsync()).Dispose());
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task Full_server_writes_max_clients_error_unprompted_while_admin_still_answers()
    {
        // The admin connection holds one of the two slots, the raw socket below the other.
        var server = await StartServerAsync(Options("--maxclients", "2"));
        using var holder = await server.ConnectRawAsync();
        await Eventually.TrueAsync(
            async () => (await server.InfoAsync("clients"))["connected_clients"] == "2",
            Deadline,
            "the holder socket should be counted by the server");

        using var rejected = await server.ConnectRawAsync();
        var line = await ReadLineAsync(rejected, Deadline);

        Assert.Equal("-ERR max number of clients reached", line);
        Assert.Equal("1", (await server.InfoAsync("stats"))["rejected_connections"]);
    }

    [Fact]
    public async Task Password_is_required_and_carried_by_the_connection_string()
    {
        var server = await StartServerAsync(new RedisServerOptions { Password = "s3cret" });

        Assert.Equal($"127.0.0.1:{server.Port},password=s3cret", server.ConnectionString);
        Assert.StartsWith("-NOAUTH", await RawCommandAsync(server, "PING"), StringComparison.Ordinal);
        await using var client = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString);
        Assert.True(await client.GetDatabase().PingAsync() >= TimeSpan.Zero);
    }

    [Fact]
    public async Task Admin_helpers_read_info_list_clients_and_set_config()
    {
        var server = await StartServerAsync();
        using var raw = await server.ConnectRawAsync();

        await server.ConfigSetAsync("maxclients", "123");
        IReadOnlyList<RedisClientInfo> clients = [];
        await Eventually.TrueAsync(
            async () => (clients = await server.ClientListAsync()).Count == 2,
            Deadline,
            "CLIENT LIST should show the admin connection and the raw socket");

        Assert.Equal("123", (await server.InfoAsync("clients"))["maxclients"]);
        var admin = Assert.Single(clients, c => c.Name == RedisServer.AdminClientName);
        Assert.Equal("client", admin.LastCommand.Split('|')[0]);
        Assert.True(admin.Id > 0);
        Assert.Equal("P", admin.Flags); // the shared RESP3 subscription socket counts as pub/sub
        Assert.Single(clients, c => c.Name.Length == 0 && c.Address == raw.Client.LocalEndPoint!.ToString());
    }

    [Fact]
    public async Task Disposal_leaves_no_redis_server_running()
    {
        var server = await RedisServer.StartAsync();
        var pid = server.ProcessId!.Value;
        Assert.True(IsRunningRedisServer(pid));

        await server.DisposeAsync();

        Assert.False(IsRunningRedisServer(pid), $"redis-server pid {pid} is still running after DisposeAsync");
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "owned", $"{pid}.pid")));
    }

    [Fact]
    public async Task Server_left_behind_by_a_crashed_test_host_is_reaped_on_the_next_start()
    {
        // Simulates a test host killed mid-run: a redis-server with a pid file whose owner is gone.
        var port = FreePort();
        using var orphan = Process.Start(new ProcessStartInfo("redis-server", ["--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""]) { RedirectStandardOutput = true })!;
        try
        {
            var registry = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "owned");
            Directory.CreateDirectory(registry);
            await File.WriteAllTextAsync(Path.Combine(registry, $"{orphan.Id}.pid"), "2147483646 0");
            Assert.True(IsRunningRedisServer(orphan.Id));

            await StartServerAsync();

            await Eventually.TrueAsync(() => orphan.HasExited, Deadline, $"orphaned redis-server pid {orphan.Id} should have been killed");
        }
        finally
        {
            if (!orphan.HasExited)
            {
                orphan.Kill();
            }
        }
    }

    [Fact]
    public async Task Port_in_use_fails_with_its_own_message_and_the_log_tail()
    {
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        squatter.Listen();
        var port = ((IPEndPoint)squatter.LocalEndPoint!).Port;

        var failure = await Assert.ThrowsAsync<RedisServerStartException>(() => RedisServer.StartAsync(new RedisServerOptions { Port = port }));

        Output.WriteLine(failure.Message);
        Assert.Equal(RedisServerStartFailure.PortInUse, failure.Failure);
        Assert.Contains($"Port {port} on 127.0.0.1 is already in use", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Address already in use", failure.LogTail, StringComparison.Ordinal);
        Assert.Contains(failure.LogTail, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Binary_that_exits_at_start_fails_with_its_own_message()
    {
        var failure = await Assert.ThrowsAsync<RedisServerStartException>(
            () => RedisServer.StartAsync(new RedisServerOptions { ServerPath = "/bin/false" }));

        Output.WriteLine(failure.Message);
        Assert.Equal(RedisServerStartFailure.ExitedAtStart, failure.Failure);
        Assert.Contains("exited at start with code 1", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_argument_exit_reports_the_server_log()
    {
        var failure = await Assert.ThrowsAsync<RedisServerStartException>(
            () => RedisServer.StartAsync(Options("--no-such-option", "1")));

        Output.WriteLine(failure.Message);
        Assert.Equal(RedisServerStartFailure.ExitedAtStart, failure.Failure);
        Assert.Contains("no-such-option", failure.LogTail, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Server_that_never_answers_ping_fails_with_its_own_message_within_the_start_timeout()
    {
        var directory = Directory.CreateTempSubdirectory("redispoolkit-fake-");
        try
        {
            var fake = Path.Combine(directory.FullName, "silent-server");
            await File.WriteAllTextAsync(fake, "#!/bin/sh\necho 'fake server: not listening'\nexec sleep 30\n");
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
            var elapsed = Stopwatch.StartNew();

            var failure = await Assert.ThrowsAsync<RedisServerStartException>(
                () => RedisServer.StartAsync(new RedisServerOptions { ServerPath = fake, StartTimeout = TimeSpan.FromSeconds(1) }));

            Output.WriteLine(failure.Message);
            Assert.Equal(RedisServerStartFailure.NotAnswering, failure.Failure);
            Assert.Contains("did not answer PING within RedisServerOptions.StartTimeout (1 s)", failure.Message, StringComparison.Ordinal);
            Assert.Contains("fake server: not listening", failure.LogTail, StringComparison.Ordinal);
            // Never before StartTimeout; the fake sleeps 30 s, so anything short of that is the timeout (named above), with room
            // for a starved 2-core machine.
            Assert.InRange(elapsed.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Missing_explicit_binary_fails_naming_the_setting()
    {
        var failure = await Assert.ThrowsAsync<RedisServerStartException>(
            () => RedisServer.StartAsync(new RedisServerOptions { ServerPath = "/nonexistent/redis-server" }));

        Assert.Equal(RedisServerStartFailure.NotFound, failure.Failure);
        Assert.Contains("RedisServerOptions.ServerPath points at '/nonexistent/redis-server'", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Container_backend_runs_redis_or_explains_the_three_ways_to_get_one()
    {
        RedisServer server;
        try
        {
            server = await StartServerAsync(new RedisServerOptions { Backend = RedisServerBackend.Container, StartTimeout = TimeSpan.FromSeconds(60) });
        }
        catch (RedisServerStartException failure)
        {
            // No Docker engine on this machine: the failure must say how to get a server.
            Output.WriteLine(failure.Message);
            Assert.Equal(RedisServerStartFailure.NotFound, failure.Failure);
            Assert.Contains("no Docker engine answered", failure.Message, StringComparison.Ordinal);
            Assert.Contains("set REDIS_SERVER_PATH", failure.Message, StringComparison.Ordinal);
            Assert.Contains("sudo apt-get install redis-server", failure.Message, StringComparison.Ordinal);
            Assert.Contains("start a Docker engine", failure.Message, StringComparison.Ordinal);
            return;
        }

        Assert.Equal(RedisServerBackend.Container, server.Backend);
        Assert.Null(server.ProcessId);
        Assert.Equal("+PONG", await RawCommandAsync(server, "PING"));
    }

    private static RedisServerOptions Options(params string[] arguments)
    {
        var options = new RedisServerOptions();
        foreach (var argument in arguments)
        {
            options.Arguments.Add(argument);
        }

        return options;
    }

    private static bool IsRunningRedisServer(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("redis-server", StringComparison.Ordinal)
                && !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static async Task<string> RawCommandAsync(RedisServer server, string command)
    {
        using var client = await server.ConnectRawAsync();
        await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        return await ReadLineAsync(client, Deadline);
    }

    private static async Task<string> ReadLineAsync(TcpClient client, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var received = new StringBuilder();
        var buffer = new byte[256];
        while (!received.ToString().Contains("\r\n", StringComparison.Ordinal))
        {
            var read = await client.GetStream().ReadAsync(buffer, deadline.Token);
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return received.ToString().Split("\r\n")[0];
    }
}
