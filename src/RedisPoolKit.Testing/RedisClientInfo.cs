using System.Globalization;

namespace RedisPoolKit.Testing;

/// <summary>One line of <c>CLIENT LIST</c>, parsed.</summary>
/// <param name="Fields">Every <c>key=value</c> pair of the line, as the server wrote it.</param>
public sealed record RedisClientInfo(IReadOnlyDictionary<string, string> Fields)
{
    /// <summary>The server's client id.</summary>
    public long Id => Number("id");

    /// <summary>The name set by <c>CLIENT SETNAME</c>, empty when none.</summary>
    public string Name => Text("name");

    /// <summary>The client's address, <c>ip:port</c>.</summary>
    public string Address => Text("addr");

    /// <summary>The client flags (for example <c>N</c> for a normal client, <c>b</c> while blocked, <c>P</c> for pub/sub).</summary>
    public string Flags => Text("flags");

    /// <summary>The last command the client ran.</summary>
    public string LastCommand => Text("cmd");

    /// <summary>How long the connection has existed.</summary>
    public TimeSpan Age => TimeSpan.FromSeconds(Number("age"));

    /// <summary>How long the connection has been idle.</summary>
    public TimeSpan Idle => TimeSpan.FromSeconds(Number("idle"));

    /// <summary>Parses the reply of <c>CLIENT LIST</c>, one entry per line.</summary>
    public static IReadOnlyList<RedisClientInfo> ParseList(string clientList)
    {
        ArgumentNullException.ThrowIfNull(clientList);
        var result = new List<RedisClientInfo>();
        foreach (var line in RedisServer.StripVerbatimPrefix(clientList).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    fields[pair[..eq]] = pair[(eq + 1)..];
                }
            }

            result.Add(new RedisClientInfo(fields));
        }

        return result;
    }

    private string Text(string key) => Fields.TryGetValue(key, out var value) ? value : string.Empty;

    private long Number(string key) =>
        long.TryParse(Text(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;
}
