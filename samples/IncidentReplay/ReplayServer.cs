using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace IncidentReplay;

/// <summary>The redis-server the replay runs against: its own, or one named with --redis.</summary>
internal sealed class ReplayServer : IAsyncDisposable
{
    private readonly Process? _process;

    private ReplayServer(string endpoint, Process? process)
    {
        Endpoint = endpoint;
        _process = process;
    }

    public string Endpoint { get; }

    public bool Owned => _process is not null;

    public static ReplayServer Existing(string endpoint) => new(endpoint, process: null);

    public static async Task<ReplayServer> StartAsync(int maxClients)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", maxClients.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("No redis-server on PATH. Install one (apt-get install redis-server) or pass --redis host:port.", ex);
        }

        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ReplayServer($"127.0.0.1:{port}", process);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (process.HasExited)
            {
                break;
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                return server;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }

        await server.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"redis-server on port {port} did not accept connections within 10 s.");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process?.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
