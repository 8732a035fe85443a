using System.Diagnostics;
using System.Globalization;

namespace RedisPoolKit.LoadTests;

/// <summary>One redis-benchmark figure: what the server itself sustains on this machine, with a C client and no .NET in the way.</summary>
internal sealed record CeilingResult(string Operation, int Size, string Mode, double OpsPerSecond, double P50Milliseconds, double P99Milliseconds);

/// <summary>Runs redis-benchmark, where it is on PATH, against the same server: <c>-c 64</c> (one request per socket in flight) and <c>-P 16</c> (pipelined).</summary>
internal static class ServerCeiling
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    public static async Task<IReadOnlyList<CeilingResult>> MeasureAsync(LoadOptions options, string host, int port, TextWriter log)
    {
        var binary = FindOnPath("redis-benchmark");
        if (binary is null)
        {
            log.WriteLine("redis-benchmark is not on PATH: no server ceiling.");
            return [];
        }

        var results = new List<CeilingResult>();
        foreach (var size in options.Sizes)
        {
            foreach (var operation in options.Operations)
            {
                foreach (var (mode, extra, requests) in new[]
                         {
                             ("-c 64", Array.Empty<string>(), options.Quick ? 100_000 : 200_000),
                             ("-c 64 -P 16", new[] { "-P", "16" }, options.Quick ? 1_000_000 : 2_000_000),
                         })
                {
                    var result = await RunAsync(binary, host, port, operation, size, mode, extra, requests).ConfigureAwait(false);
                    if (result is not null)
                    {
                        results.Add(result);
                        log.WriteLine($"  redis-benchmark {mode}, {operation} {size} B: {result.OpsPerSecond:N0} ops/s (p50 {result.P50Milliseconds:0.000} ms, p99 {result.P99Milliseconds:0.000} ms)");
                    }
                    else
                    {
                        log.WriteLine($"  redis-benchmark {mode}, {operation} {size} B: no figure (it failed or took longer than {Timeout.TotalSeconds:0} s)");
                    }
                }
            }
        }

        return results;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator)
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists);

    private static async Task<CeilingResult?> RunAsync(string binary, string host, int port, string operation, int size, string mode, string[] extra, int requests)
    {
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "-h", host, "-p", port.ToString(CultureInfo.InvariantCulture), "-c", "64",
                     "-n", requests.ToString(CultureInfo.InvariantCulture), "-d", size.ToString(CultureInfo.InvariantCulture),
                     "-t", operation.ToLowerInvariant(), "--csv",
                 }.Concat(extra))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start);
        if (process is null)
        {
            return null;
        }

        var output = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            process.Kill();
            return null;
        }

        foreach (var line in (await output.ConfigureAwait(false)).Split('\n'))
        {
            var fields = line.Trim().Split(',').Select(f => f.Trim('"')).ToArray();
            if (fields.Length >= 7 && fields[0].Equals(operation, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rps))
            {
                return new CeilingResult(
                    operation,
                    size,
                    mode,
                    rps,
                    double.Parse(fields[4], NumberStyles.Float, CultureInfo.InvariantCulture),
                    double.Parse(fields[6], NumberStyles.Float, CultureInfo.InvariantCulture));
            }
        }

        return null;
    }
}
