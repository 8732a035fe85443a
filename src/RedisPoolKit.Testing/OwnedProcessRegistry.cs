using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace RedisPoolKit.Testing;

/// <summary>
/// Remembers every redis-server this process starts, so none outlives it: a live set killed on
/// process exit, and a pid file per server naming its owner, so the next run reaps what a crashed
/// (SIGKILLed) test host left behind.
/// </summary>
internal static class OwnedProcessRegistry
{
    private static readonly ConcurrentDictionary<int, Process> Live = new();
    private static readonly string OwnerStamp = ProcessStamp(Environment.ProcessId) ?? "0";

    static OwnedProcessRegistry()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllLive();
    }

    internal static string Directory { get; } = Path.Combine(Path.GetTempPath(), "redispoolkit-testing", "owned");

    internal static void Register(Process process)
    {
        System.IO.Directory.CreateDirectory(Directory);
        Live[process.Id] = process;
        File.WriteAllText(PidFile(process.Id), string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {OwnerStamp}"));
    }

    internal static void Unregister(int pid)
    {
        Live.TryRemove(pid, out _);
        TryDelete(PidFile(pid));
    }

    /// <summary>Kills servers whose owner process is gone, after checking the pid still runs redis-server or redis-sentinel.</summary>
    internal static void ReapOrphans()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.pid"))
        {
            if (!int.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out var serverPid))
            {
                continue;
            }

            string[] owner;
            try
            {
                owner = File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (IOException)
            {
                continue;
            }

            if (owner.Length == 2
                && int.TryParse(owner[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ownerPid)
                && ProcessStamp(ownerPid) == owner[1])
            {
                continue;
            }

            if (IsRedisServer(serverPid))
            {
                TryKill(serverPid);
            }

            TryDelete(file);
        }
    }

    internal static bool IsRedisServer(int pid)
    {
        try
        {
            // A sentinel started as redis-sentinel names itself so in its process title.
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline");
            return commandLine.Contains("redis-server", StringComparison.Ordinal) || commandLine.Contains("redis-sentinel", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void KillAllLive()
    {
        foreach (var (pid, process) in Live)
        {
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
            }
            catch (System.ComponentModel.Win32Exception)
            {
            }

            Unregister(pid);
        }
    }

    private static void TryKill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
        }
        catch (InvalidOperationException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>The kernel's start time of a process: with the pid it tells a live owner from a recycled pid.</summary>
    private static string? ProcessStamp(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 ? fields[19] : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string PidFile(int pid) => Path.Combine(Directory, pid.ToString(CultureInfo.InvariantCulture) + ".pid");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
