using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Reads a <c>MOVED</c> or <c>ASK</c> reply to a command on a single-node lease socket: StackExchange.Redis does not
/// follow it there (the socket is not allowed to discover other nodes) and fails the command with an exception
/// that names the node the slot now belongs to. The command did not run.
/// </summary>
internal static partial class LeaseRedirect
{
    /// <summary>The node a redirect points to, or <see langword="null"/> when <paramref name="exception"/> is not a redirect.</summary>
    public static EndPoint? Target(Exception exception)
    {
        if (exception is not RedisException)
        {
            return null;
        }

        var match = RedirectPattern().Match(exception.Message);
        if (!match.Success)
        {
            return null;
        }

        var text = match.Groups["endpoint"].Value;
        if (IPEndPoint.TryParse(text, out var ip))
        {
            return ip;
        }

        var colon = text.LastIndexOf(':');
        return colon > 0 && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? new DnsEndPoint(text[..colon], port)
            : null;
    }

    // MOVED with CommandFlags.NoRedirect: "Key has MOVED to Endpoint host:port and hashslot n ..."; ASK (and MOVED
    // without the flag): "Endpoint host:port serving hashslot n is not reachable ...".
    [GeneratedRegex(@"Endpoint (?<endpoint>\S+) (?:and|serving) hashslot \d+", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex RedirectPattern();
}
