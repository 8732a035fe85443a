using System.Globalization;

namespace RedisPoolKit.Cli.Output;

/// <summary>Durations on the command line: <c>500ms</c>, <c>30s</c>, <c>10m</c>, <c>2h</c>, <c>1d</c>, or a .NET TimeSpan (<c>00:10:00</c>).</summary>
internal static class Duration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        text = text.Trim();
        (string Suffix, double Milliseconds)[] units = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, milliseconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && (suffix != "m" || !text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                value = TimeSpan.FromMilliseconds(number * milliseconds);
                return true;
            }
        }

        return text.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A short human form: <c>45 s</c>, <c>12 min</c>, <c>3.5 h</c>, <c>2 d</c>.</summary>
    public static string Format(TimeSpan value) => value.TotalSeconds switch
    {
        < 1 => string.Create(CultureInfo.InvariantCulture, $"{value.TotalMilliseconds:0} ms"),
        < 120 => string.Create(CultureInfo.InvariantCulture, $"{value.TotalSeconds:0} s"),
        < 7_200 => string.Create(CultureInfo.InvariantCulture, $"{value.TotalMinutes:0} min"),
        < 172_800 => string.Create(CultureInfo.InvariantCulture, $"{value.TotalHours:0.#} h"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{value.TotalDays:0.#} d"),
    };

    public static string Seconds(long seconds) => seconds < 1 ? "0 s" : Format(TimeSpan.FromSeconds(seconds));
}
