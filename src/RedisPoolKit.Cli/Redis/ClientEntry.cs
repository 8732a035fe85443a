using System.Globalization;

namespace RedisPoolKit.Cli.Redis;

/// <summary>One line of <c>CLIENT LIST</c>.</summary>
internal sealed record ClientEntry
{
    public required long Id { get; init; }

    /// <summary><c>ip:port</c> of the client as the server sees it.</summary>
    public required string Address { get; init; }

    /// <summary>The <c>CLIENT SETNAME</c> name; empty when none was set.</summary>
    public required string Name { get; init; }

    public required long AgeSeconds { get; init; }

    public required long IdleSeconds { get; init; }

    public required string Flags { get; init; }

    /// <summary>The last command the client ran (<c>blpop</c>, <c>ping</c>, <c>client|setname</c>...).</summary>
    public required string Command { get; init; }

    /// <summary>Channel, pattern and shard-channel subscriptions added up.</summary>
    public required int Subscriptions { get; init; }

    public required string LibraryName { get; init; }

    public required string User { get; init; }

    /// <summary>The pool socket name, when the client's name has RedisPoolKit's format.</summary>
    public PoolClientName? PoolName => PoolClientName.TryParse(Name, out var parsed) ? parsed : null;

    public bool IsBlocked => Flags.Contains('b', StringComparison.Ordinal);

    /// <summary>A replication link: a replica connected to this server (<c>S</c>) or this replica's master (<c>M</c>).</summary>
    public bool IsReplication => Flags.Contains('S', StringComparison.Ordinal) || Flags.Contains('M', StringComparison.Ordinal);

    public bool IsPubSub => Flags.Contains('P', StringComparison.Ordinal) || Subscriptions > 0;

    /// <summary>The address without the port: the host that opened the socket.</summary>
    public string Host
    {
        get
        {
            var colon = Address.LastIndexOf(':');
            return colon > 0 ? Address[..colon] : Address;
        }
    }

    /// <summary>Parses the reply of <c>CLIENT LIST</c>.</summary>
    public static IReadOnlyList<ClientEntry> ParseList(string text)
    {
        var result = new List<ClientEntry>();
        foreach (var line in InfoText.StripVerbatimPrefix(text).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
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

            if (!fields.ContainsKey("id"))
            {
                continue;
            }

            result.Add(new ClientEntry
            {
                Id = Number(fields, "id"),
                Address = Text(fields, "addr"),
                Name = Text(fields, "name"),
                AgeSeconds = Number(fields, "age"),
                IdleSeconds = Number(fields, "idle"),
                Flags = Text(fields, "flags"),
                Command = Text(fields, "cmd"),
                Subscriptions = (int)(Number(fields, "sub") + Number(fields, "psub") + Number(fields, "ssub")),
                LibraryName = Text(fields, "lib-name"),
                User = Text(fields, "user"),
            });
        }

        return result;
    }

    private static string Text(Dictionary<string, string> fields, string key) => fields.TryGetValue(key, out var value) ? value : string.Empty;

    private static long Number(Dictionary<string, string> fields, string key) =>
        long.TryParse(Text(fields, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;
}
