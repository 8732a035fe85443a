using System.Globalization;

namespace RedisPoolKit.Cli.Redis;

/// <summary>Parses <c>INFO</c> replies into <c>field</c> → <c>value</c>.</summary>
internal static class InfoText
{
    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in StripVerbatimPrefix(text).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[0] != '#')
            {
                result[line[..colon]] = line[(colon + 1)..];
            }
        }

        return result;
    }

    public static long? Number(IReadOnlyDictionary<string, string> info, string key) =>
        info.TryGetValue(key, out var text) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>Over RESP3, <c>INFO</c> and <c>CLIENT LIST</c> may arrive as verbatim strings starting with their format, <c>txt:</c>.</summary>
    public static string StripVerbatimPrefix(string text) =>
        text.StartsWith("txt:", StringComparison.Ordinal) ? text[4..] : text;
}
