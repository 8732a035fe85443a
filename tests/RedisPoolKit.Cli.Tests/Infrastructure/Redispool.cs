using System.Text.Json;

namespace RedisPoolKit.Cli.Tests.Infrastructure;

/// <summary>Runs <c>redispool</c> in-process with captured output (plain: no colors, fixed width).</summary>
internal static class Redispool
{
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await new CliApp(output, error, TimeProvider.System, plainOutput: true).RunAsync(args);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}

internal sealed record CliResult(int ExitCode, string Output, string Error)
{
    public JsonElement Json()
    {
        try
        {
            using var document = JsonDocument.Parse(Output);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"Not JSON (exit {ExitCode}): {Output}\nstderr: {Error}", ex);
        }
    }

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}
