using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DotNet.Testcontainers.Containers;
using Testcontainers.Redis;

namespace RedisPoolKit.Testing;

/// <summary>Runs one server; <see cref="RedisServer"/> owns readiness, the admin connection and messages.</summary>
internal abstract class ServerBackend : IAsyncDisposable
{
    public abstract RedisServerBackend Kind { get; }

    public virtual int? ProcessId => null;

    /// <summary>Exit code once the server has stopped by itself; <see langword="null"/> while it runs.</summary>
    public abstract int? ExitCode { get; }

    public abstract Task LaunchAsync(CancellationToken cancellationToken);

    public abstract Task KillAsync();

    public abstract Task StopAsync();

    public abstract string LogTail(int lines);

    public abstract ValueTask DisposeAsync();
}

internal sealed partial class ProcessServerBackend : ServerBackend
{
    private const int SigTerm = 15;
    private const int ConsoleLinesKept = 200;

    private readonly string _binary;
    private readonly IReadOnlyList<string> _arguments;
    private readonly string _directory;
    private readonly string _logFile;
    private readonly ConcurrentQueue<string> _console = new();
    private Process? _process;

    public ProcessServerBackend(string binary, IReadOnlyList<string> arguments, string directory, string logFile)
    {
        _binary = binary;
        _arguments = arguments;
        _directory = directory;
        _logFile = logFile;
    }

    public override RedisServerBackend Kind => RedisServerBackend.Process;

    public override int? ProcessId => _process?.Id;

    public override int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    public override Task LaunchAsync(CancellationToken cancellationToken)
    {
        OwnedProcessRegistry.ReapOrphans();
        var start = new ProcessStartInfo(_binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _directory,
        };
        foreach (var argument in _arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            process.Dispose();
            throw new RedisServerStartException(
                RedisServerStartFailure.ExitedAtStart,
                $"The Redis server binary '{_binary}' could not be executed: {ex.Message}. Point RedisServerOptions.ServerPath or REDIS_SERVER_PATH at an executable redis-server.",
                innerException: ex);
        }

        OwnedProcessRegistry.Register(process);
        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return Task.CompletedTask;
    }

    public override async Task KillAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        _process = null;
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
        }

        await process.WaitForExitAsync().ConfigureAwait(false);
        OwnedProcessRegistry.Unregister(process.Id);
        process.Dispose();
    }

    public override async Task StopAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            await KillAsync().ConfigureAwait(false);
            return;
        }

        _ = Kill(process.Id, SigTerm);
        using var graceful = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await process.WaitForExitAsync(graceful.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await KillAsync().ConfigureAwait(false);
    }

    public override string LogTail(int lines)
    {
        var tail = new List<string>();
        try
        {
            using var stream = new FileStream(_logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            tail.AddRange(all.TakeLast(lines));
        }
        catch (IOException)
        {
        }

        var console = _console.ToArray();
        if (console.Length > 0)
        {
            tail.Add("--- console ---");
            tail.AddRange(console.TakeLast(lines));
        }

        return string.Join(Environment.NewLine, tail);
    }

    public override async ValueTask DisposeAsync()
    {
        await KillAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _console.Enqueue(line);
        while (_console.Count > ConsoleLinesKept && _console.TryDequeue(out _))
        {
        }
    }
}

internal sealed class ContainerServerBackend : ServerBackend
{
    private const int RedisPort = 6379;

    private readonly RedisContainer _container;
    private bool _running;

    public ContainerServerBackend(string image, int hostPort, IReadOnlyList<string> arguments)
    {
        _container = new RedisBuilder(image)
            .WithPortBinding(hostPort, RedisPort)
            .WithCommand([.. arguments])
            .Build();
    }

    public override RedisServerBackend Kind => RedisServerBackend.Container;

    public override int? ExitCode => _running || _container.State is TestcontainersStates.Running or TestcontainersStates.Undefined or TestcontainersStates.Created ? null : 1;

    public override async Task LaunchAsync(CancellationToken cancellationToken)
    {
        await _container.StartAsync(cancellationToken).ConfigureAwait(false);
        _running = true;
    }

    public override async Task KillAsync()
    {
        _running = false;
        await _container.StopAsync().ConfigureAwait(false);
    }

    public override Task StopAsync() => KillAsync();

    public override string LogTail(int lines)
    {
        try
        {
            // LogTail is synchronous so a failing assertion can call it anywhere; the container's
            // log is only reachable through the Docker API.
            var (stdout, stderr) = _container.GetLogsAsync().GetAwaiter().GetResult();
            return string.Join(Environment.NewLine, (stdout + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(lines));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return string.Create(CultureInfo.InvariantCulture, $"(container log unavailable: {ex.Message})");
        }
    }

    public override ValueTask DisposeAsync() => _container.DisposeAsync();
}
