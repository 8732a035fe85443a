using System.Globalization;

namespace RedisPoolKit.Testing;

/// <summary>One line of <c>CLUSTER NODES</c>: a node as another node (or itself) sees it.</summary>
internal sealed record ClusterNodeEntry(string Id, int Port, IReadOnlySet<string> Flags, string? MasterId, IReadOnlyList<(int First, int Last)> Slots)
{
    public bool IsMaster => Flags.Contains("master");

    public bool IsFailed => Flags.Contains("fail") || Flags.Contains("fail?");

    public bool Owns(int slot) => Slots.Any(range => range.First <= slot && slot <= range.Last);

    /// <summary>Parses <c>&lt;id&gt; &lt;ip:port@cport&gt; &lt;flags&gt; &lt;master&gt; &lt;ping&gt; &lt;pong&gt; &lt;epoch&gt; &lt;link&gt; &lt;slot&gt;...</c>; migration markers (<c>[slot-&gt;-id]</c>) are skipped.</summary>
    public static IReadOnlyList<ClusterNodeEntry> ParseList(string clusterNodes)
    {
        var result = new List<ClusterNodeEntry>();
        foreach (var line in RedisServer.StripVerbatimPrefix(clusterNodes).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 8)
            {
                continue;
            }

            var address = fields[1].Split('@', ',')[0];
            var port = int.Parse(address[(address.LastIndexOf(':') + 1)..], NumberStyles.None, CultureInfo.InvariantCulture);
            var slots = new List<(int, int)>();
            foreach (var range in fields.Skip(8).Where(f => f[0] != '['))
            {
                var dash = range.IndexOf('-', StringComparison.Ordinal);
                var first = int.Parse(dash < 0 ? range : range[..dash], NumberStyles.None, CultureInfo.InvariantCulture);
                slots.Add((first, dash < 0 ? first : int.Parse(range[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture)));
            }

            result.Add(new ClusterNodeEntry(
                fields[0],
                port,
                fields[2].Split(',').ToHashSet(StringComparer.Ordinal),
                fields[3] == "-" ? null : fields[3],
                slots));
        }

        return result;
    }
}
