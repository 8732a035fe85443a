using System.Buffers;
using System.Diagnostics;
using System.Reflection;

namespace RedisPoolKit;

/// <summary>Builds the <c>CLIENT SETNAME</c> of every socket: <c>{service}:{instance}:{pool}:{role}{index}</c>.</summary>
internal static class RedisClientNames
{
    /// <summary>Appended to StackExchange.Redis's library name (<c>CLIENT SETINFO lib-name</c>).</summary>
    public const string LibrarySuffix = "RedisPoolKit";

    // CLIENT SETNAME refuses spaces, newlines and other non-printable characters; ':' is our separator.
    private static readonly SearchValues<char> s_allowed =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    public static string DefaultServiceName { get; } = Sanitize(Assembly.GetEntryAssembly()?.GetName().Name ?? "app");

    public static string DefaultInstanceId { get; } = Sanitize($"{Environment.MachineName}-{Environment.ProcessId}");

    /// <summary>True when <paramref name="value"/> can be one part of a client name.</summary>
    public static bool IsValidPart(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 64 && !value.AsSpan().ContainsAnyExcept(s_allowed);

    public static string Prefix(string service, string instance, string pool) => $"{service}:{instance}:{pool}:";

    /// <summary>One socket's name: the pool's <see cref="Prefix"/>, the role and the index.</summary>
    public static string Build(string prefix, SocketRole role, int index) => $"{prefix}{RolePrefix(role)}{index}";

    public static string RolePrefix(SocketRole role) => role switch
    {
        SocketRole.Multiplexer => "mux",
        SocketRole.Lease => "lease",
        SocketRole.Monitor => "mon",
        SocketRole.Probe => "probe",
        SocketRole.Sentinel => "sentinel",
        _ => throw new UnreachableException(),
    };

    /// <summary>
    /// <paramref name="value"/> as one part of a client name: characters <c>CLIENT SETNAME</c> cannot carry become <c>-</c>,
    /// at most 64 characters.
    /// </summary>
    public static string Sanitize(string value)
    {
        var chars = value.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!s_allowed.Contains(chars[i]))
            {
                chars[i] = '-';
            }
        }

        var result = new string(chars, 0, Math.Min(chars.Length, 64));
        return result.Length == 0 ? "app" : result;
    }
}
