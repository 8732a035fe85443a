using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace RedisPoolKit.Cli.Redis;

/// <summary>
/// A socket name RedisPoolKit sets with <c>CLIENT SETNAME</c>: <c>{service}:{instance}:{pool}:{role}{index}</c>,
/// for example <c>order-service:pod-7:cache:mux0</c>. Each of the first three parts is 1-64 of
/// <c>A-Z a-z 0-9 - _ .</c>; the role is <c>mux</c>, <c>lease</c>, <c>mon</c>, <c>probe</c> or <c>sentinel</c> (a socket to a sentinel, under Sentinel).
/// </summary>
internal sealed record PoolClientName(string Service, string Instance, string Pool, string Role, int Index)
{
    /// <summary>The socket roles a pool names, in the order the tool lists them.</summary>
    public static IReadOnlyList<string> Roles { get; } = ["mux", "lease", "mon", "probe", "sentinel"];

    private const int MaxPartLength = 64;

    private static readonly SearchValues<char> s_partCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    /// <summary>Parses a client name; false for any name that is not exactly a pool socket's name.</summary>
    public static bool TryParse(string? name, [NotNullWhen(true)] out PoolClientName? result)
    {
        result = null;
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        var parts = name.Split(':');
        if (parts.Length != 4 || !IsPart(parts[0]) || !IsPart(parts[1]) || !IsPart(parts[2]))
        {
            return false;
        }

        var last = parts[3];
        foreach (var role in Roles)
        {
            if (last.Length > role.Length
                && last.StartsWith(role, StringComparison.Ordinal)
                && last.AsSpan(role.Length).IndexOfAnyExceptInRange('0', '9') < 0
                && int.TryParse(last.AsSpan(role.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                result = new PoolClientName(parts[0], parts[1], parts[2], role, index);
                return true;
            }
        }

        return false;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Service}:{Instance}:{Pool}:{Role}{Index}");

    private static bool IsPart(string part) =>
        part.Length is > 0 and <= MaxPartLength && !part.AsSpan().ContainsAnyExcept(s_partCharacters);
}
