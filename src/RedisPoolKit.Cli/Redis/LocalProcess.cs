using System.Globalization;
using System.Net;

namespace RedisPoolKit.Cli.Redis;

/// <summary>What this host's <c>/proc</c> says about a server's process, when the server runs here.</summary>
/// <param name="OpenFilesLimit">The soft <c>Max open files</c> of the process, or null when it could not be read.</param>
/// <param name="Why">Why the limit is unknown (remote server, other process, no <c>/proc</c>).</param>
internal sealed record ProcessLimits(long? OpenFilesLimit, string? Why);

internal static class LocalProcess
{
    /// <summary>
    /// Reads <c>/proc/{pid}/limits</c> when <paramref name="endpoint"/> is a loopback address and the pid on this
    /// host is a <c>redis-server</c>; otherwise says why it cannot.
    /// </summary>
    public static ProcessLimits Read(string endpoint, long? processId, string proc = "/proc")
    {
        if (processId is not { } pid)
        {
            return new ProcessLimits(null, "INFO server gave no process_id");
        }

        var colon = endpoint.LastIndexOf(':');
        var host = (colon > 0 ? endpoint[..colon] : endpoint).Trim('[', ']');
        var local = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
        if (!local)
        {
            return new ProcessLimits(null, string.Create(CultureInfo.InvariantCulture, $"the server runs on {host}, not this host"));
        }

        var directory = Path.Combine(proc, pid.ToString(CultureInfo.InvariantCulture));
        string comm;
        try
        {
            comm = File.ReadAllText(Path.Combine(directory, "comm")).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new ProcessLimits(null, string.Create(CultureInfo.InvariantCulture, $"no process {pid} on this host (the server may run in a container or another network namespace)"));
        }

        if (!comm.StartsWith("redis-server", StringComparison.Ordinal))
        {
            return new ProcessLimits(null, string.Create(CultureInfo.InvariantCulture, $"process {pid} on this host is {comm}, not redis-server (the server runs in a container or elsewhere)"));
        }

        try
        {
            foreach (var line in File.ReadLines(Path.Combine(directory, "limits")))
            {
                // "Max open files            1024                 1048576              files"
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (fields.Length > 0 && fields[0] == "unlimited")
                    {
                        return new ProcessLimits(long.MaxValue, null);
                    }

                    if (fields.Length > 0 && long.TryParse(fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var soft))
                    {
                        return new ProcessLimits(soft, null);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new ProcessLimits(null, $"cannot read {Path.Combine(directory, "limits")}: {ex.Message}");
        }

        return new ProcessLimits(null, $"{Path.Combine(directory, "limits")} has no 'Max open files' line");
    }
}
