using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>Reads the replies of the blocking commands a <see cref="RedisLease"/> runs; a null reply is the command's timeout.</summary>
internal static class LeaseReplyParser
{
    /// <summary><c>BLPOP</c>/<c>BRPOP</c>: [list, element].</summary>
    public static (RedisKey Key, RedisValue Value)? ListPop(RedisResult result)
    {
        if (result.IsNull)
        {
            return null;
        }

        var pair = (RedisResult[])result!;
        return ((RedisKey)pair[0], (RedisValue)pair[1]);
    }

    /// <summary><c>BZPOPMIN</c>/<c>BZPOPMAX</c>: [sorted set, member, score].</summary>
    public static (RedisKey Key, SortedSetEntry Entry)? SortedSetPop(RedisResult result)
    {
        if (result.IsNull)
        {
            return null;
        }

        var triple = (RedisResult[])result!;
        return ((RedisKey)triple[0], new SortedSetEntry((RedisValue)triple[1], (double)triple[2]));
    }

    /// <summary><c>XREAD</c>/<c>XREADGROUP</c>: RESP3 answers a map of stream to entries, RESP2 an array of [stream, entries] pairs; both read the same.</summary>
    public static (RedisKey Key, StreamEntry[] Entries)[] Streams(RedisResult result)
    {
        if (result.IsNull)
        {
            return [];
        }

        var items = (RedisResult[])result!;
        var isMap = result.Resp3Type == ResultType.Map;
        var streams = new (RedisKey, StreamEntry[])[isMap ? items.Length / 2 : items.Length];
        for (var i = 0; i < streams.Length; i++)
        {
            RedisResult key, entries;
            if (isMap)
            {
                key = items[2 * i];
                entries = items[(2 * i) + 1];
            }
            else
            {
                var pair = (RedisResult[])items[i]!;
                key = pair[0];
                entries = pair[1];
            }

            streams[i] = ((RedisKey)key, Entries(entries));
        }

        return streams;
    }

    private static StreamEntry[] Entries(RedisResult result)
    {
        if (result.IsNull)
        {
            return [];
        }

        var items = (RedisResult[])result!;
        var entries = new StreamEntry[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var entry = (RedisResult[])items[i]!;
            NameValueEntry[] values = [];
            if (!entry[1].IsNull)
            {
                // A deleted entry still in a group's pending list comes back with nil fields.
                var fields = (RedisResult[])entry[1]!;
                values = new NameValueEntry[fields.Length / 2];
                for (var f = 0; f < values.Length; f++)
                {
                    values[f] = new NameValueEntry((RedisValue)fields[2 * f], (RedisValue)fields[(2 * f) + 1]);
                }
            }

            entries[i] = new StreamEntry((RedisValue)entry[0], values);
        }

        return entries;
    }
}
