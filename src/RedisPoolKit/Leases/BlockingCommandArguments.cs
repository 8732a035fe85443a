using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The arguments of the blocking commands a <see cref="RedisLease"/> runs, in the order the server expects them.
/// The caller checks the timeout against the lease's command timeout; these check everything else.
/// </summary>
internal static class BlockingCommandArguments
{
    /// <summary><c>BLPOP</c>/<c>BRPOP</c>/<c>BZPOPMIN</c>/<c>BZPOPMAX</c>: the keys, then the timeout in seconds.</summary>
    public static object[] KeysThenTimeout(RedisKey[] keys, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentOutOfRangeException.ThrowIfZero(keys.Length);
        var args = new object[keys.Length + 1];
        for (var i = 0; i < keys.Length; i++)
        {
            args[i] = keys[i];
        }

        args[^1] = Seconds(timeout);
        return args;
    }

    /// <summary><c>BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout</c>.</summary>
    public static object[] Move(RedisKey source, RedisKey destination, ListSide sourceSide, ListSide destinationSide, TimeSpan timeout) =>
        [source, destination, Side(sourceSide), Side(destinationSide), Seconds(timeout)];

    /// <summary><c>XREAD [COUNT n] BLOCK ms STREAMS key... id...</c> without the command name.</summary>
    public static object[] StreamRead(StreamPosition[] positions, int? countPerStream, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(positions);
        ArgumentOutOfRangeException.ThrowIfZero(positions.Length);
        var args = new List<object>(6 + (positions.Length * 2));
        AddCount(args, countPerStream);
        args.Add("BLOCK");
        args.Add(Milliseconds(timeout));
        AddStreams(args, positions);
        return [.. args];
    }

    /// <summary><c>XREADGROUP GROUP g c [COUNT n] [NOACK] BLOCK ms STREAMS key... id...</c> without the command name.</summary>
    public static object[] StreamReadGroup(StreamPosition[] positions, RedisValue groupName, RedisValue consumerName, int? countPerStream, bool noAck, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(positions);
        ArgumentOutOfRangeException.ThrowIfZero(positions.Length);
        var args = new List<object>(10 + (positions.Length * 2)) { "GROUP", groupName, consumerName };
        AddCount(args, countPerStream);
        if (noAck)
        {
            args.Add("NOACK");
        }

        args.Add("BLOCK");
        args.Add(Milliseconds(timeout));
        AddStreams(args, positions);
        return [.. args];
    }

    /// <summary><c>WAIT numreplicas timeout-ms</c>.</summary>
    public static object[] Wait(int numberOfReplicas, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numberOfReplicas);
        return [numberOfReplicas, Milliseconds(timeout)];
    }

    private static string Seconds(TimeSpan timeout) =>
        Math.Max(0.001, Math.Round(timeout.TotalSeconds, 3)).ToString("0.###", CultureInfo.InvariantCulture);

    // Zero would block forever, so a sub-millisecond timeout rounds up to one.
    private static long Milliseconds(TimeSpan timeout) => Math.Max(1, (long)Math.Ceiling(timeout.TotalMilliseconds));

    private static string Side(ListSide side) => side == ListSide.Left ? "LEFT" : "RIGHT";

    private static void AddCount(List<object> args, int? count)
    {
        if (count is { } n)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n, "countPerStream");
            args.Add("COUNT");
            args.Add(n);
        }
    }

    private static void AddStreams(List<object> args, StreamPosition[] positions)
    {
        args.Add("STREAMS");
        foreach (var position in positions)
        {
            args.Add(position.Key);
        }

        foreach (var position in positions)
        {
            args.Add(position.Position);
        }
    }
}
