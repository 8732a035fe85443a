using System.Text.Json;
using System.Text.Json.Serialization;
using RedisPoolKit.Cli.Commands;
using RedisPoolKit.Cli.Inspect;

namespace RedisPoolKit.Cli.Output;

/// <summary>Every <c>--json</c> shape, source-generated: snake_case names, nulls omitted.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(InspectReport))]
[JsonSerializable(typeof(WatchSample))]
[JsonSerializable(typeof(KillIdleReport))]
[JsonSerializable(typeof(DoctorReport))]
[JsonSerializable(typeof(BudgetReport))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>The same shapes on one line each (<c>watch --json</c> writes one line per sample).</summary>
    public static CliJsonContext Compact => s_compact ??= new(new JsonSerializerOptions(Default.Options) { WriteIndented = false });

    // Lazy: a static initializer here could run before the generated Default is set.
    private static CliJsonContext? s_compact;
}
