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

    /// <summary>
    /// The exception of a command whose redirect was followed and that was redirected again: the slot moved once more
    /// (a resharding still in progress). A lease follows one redirect; the command did not run.
    /// </summary>
    public static RedisException Twice(string command, long leaseId, EndPoint? node, EndPoint first, EndPoint second, Exception again)
    {
        var message = $"{command} on lease {leaseId} was redirected twice and did not run: {Format(node)} answered that its slot is served by {Format(first)}, and {Format(first)} then named {Format(second)}. The slot is still moving (a resharding in progress); a lease follows one redirect. Retry the command, or dispose the lease and take a new one for the key once the migration is done.";
        return again is RedisConnectionException connection
            ? new RedisConnectionException(connection.FailureType, CommandFlags.None, message, again, connection.CommandStatus)
            : new RedisException(message, again);
    }

    private static string Format(EndPoint? endpoint) => endpoint is null ? "the lease's master" : RedisConnectionFactory.Format(endpoint);

    // MOVED with CommandFlags.NoRedirect: "Key has MOVED to Endpoint host:port and hashslot n ..."; ASK (and MOVED
    // without the flag): "Endpoint host:port serving hashslot n is not reachable ...".
    [GeneratedRegex(@"Endpoint (?<endpoint>\S+) (?:and|serving) hashslot \d+", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex RedirectPattern();
}
