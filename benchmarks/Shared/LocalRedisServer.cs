using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RedisPoolKit.Benchmarking;

/// <summary>
/// A throwaway redis-server on a free loopback port, with no persistence, stopped (by its own pid) on dispose.
/// </summary>
/// <remarks>
/// Stands in for <c>RedisPoolKit.Testing.RedisServer</c> until that harness lands; the benchmarks need only
/// "start one, give me host:port, stop it".
/// </remarks>
internal sealed class LocalRedisServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private LocalRedisServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public string EndPoint => $"127.0.0.1:{Port}";

    public static async Task<LocalRedisServer> StartAsync(TimeSpan timeout)
    {
        var binary = FindOnPath("redis-server")
            ?? throw new InvalidOperationException("redis-server was not found on PATH. Install it (apt-get install redis-server) or pass --redis 127.0.0.1:PORT.");
        var directory = Directory.CreateTempSubdirectory("redispoolkit-bench-").FullName;
        var port = FreeLoopbackPort();
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var argument in new[]
                 {
                     "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--bind", "127.0.0.1",
                     "--save", string.Empty,
                     "--appendonly", "no",
                     "--daemonize", "no",
                     "--dir", directory,
                     "--maxclients", "4096",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new LocalRedisServer(process, directory, port);
        try
        {
            await server.WaitForPingAsync(timeout).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return server;
    }

    public static string? FindOnPath(string name)
    {
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
        }
        catch (TimeoutException)
        {
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task WaitForPingAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var ping = Encoding.ASCII.GetBytes("PING\r\n");
        var reply = new byte[64];
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {_process.ExitCode} before answering on 127.0.0.1:{Port}.");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port).ConfigureAwait(false);
                var stream = client.GetStream();
                await stream.WriteAsync(ping).ConfigureAwait(false);
                var read = await stream.ReadAsync(reply).ConfigureAwait(false);
                if (read > 0 && Encoding.ASCII.GetString(reply, 0, read).StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"redis-server on 127.0.0.1:{Port} did not answer PING within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }
}
