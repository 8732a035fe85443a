using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.DependencyInjection;

/// <summary>
/// A throwaway redis-server on a free loopback port, until the shared harness (RedisPoolKit.Testing.RedisServer)
/// lands; its members mirror the harness's so the swap is a rename.
/// </summary>
public sealed class LocalRedisServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConnectionMultiplexer _admin;

    private LocalRedisServer(Process process, int port, ConnectionMultiplexer admin)
    {
        _process = process;
        Port = port;
        _admin = admin;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<LocalRedisServer> StartAsync()
    {
        var path = Environment.GetEnvironmentVariable("REDIS_SERVER_PATH") ?? "/usr/bin/redis-server";
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"No redis-server at {path}: install redis-server 7 or set REDIS_SERVER_PATH.");
        }

        var port = FreePort();
        var start = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var admin = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},allowAdmin=true,name=di-admin,connectTimeout=1000");
                return new LocalRedisServer(process, port, admin);
            }
            catch (RedisConnectionException) when (deadline.Elapsed < TimeSpan.FromSeconds(10) && !process.HasExited)
            {
                await Task.Delay(50);
            }
            catch
            {
                process.Kill();
                process.Dispose();
                throw;
            }
        }
    }

    /// <summary>The <c>name</c> of every client connected to the server, from <c>CLIENT LIST</c>.</summary>
    public async Task<IReadOnlyList<string>> ClientNamesAsync()
    {
        var clients = await _admin.GetServer(ConnectionString).ClientListAsync();
        return clients.Select(c => c.Name ?? "").ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await _admin.DisposeAsync();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
