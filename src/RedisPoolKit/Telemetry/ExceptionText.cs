namespace RedisPoolKit;

/// <summary>Exceptions as one short clause for a log line or a message that quotes the cause.</summary>
internal static class ExceptionText
{
    /// <summary>The exception's type and the first line of its message (StackExchange.Redis appends multi-line diagnostics).</summary>
    public static string Brief(Exception exception) => exception.GetType().Name + ": " + exception.Message.Split('\n', 2)[0];
}
