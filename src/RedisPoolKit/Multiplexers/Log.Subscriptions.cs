using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

internal static partial class Log
{
    [LoggerMessage(EventId = 910, Level = LogLevel.Information, Message = "Pool '{Pool}' moved {Handlers} pub/sub handler subscriptions of its drop-in multiplexer from {From} to {To}; ChannelMessageQueue subscriptions there were completed and must be subscribed again")]
    public static partial void SubscriptionsMoved(ILogger logger, string pool, string from, string to, int handlers);

    [LoggerMessage(EventId = 911, Level = LogLevel.Warning, Message = "Pool '{Pool}' could not re-subscribe channel '{Channel}' on {To}; the handler stays registered there and is subscribed again when that connection is restored")]
    public static partial void SubscriptionMoveFailed(ILogger logger, string pool, string channel, string to, Exception exception);

    [LoggerMessage(EventId = 912, Level = LogLevel.Warning, Message = "Pool '{Pool}' lost {From}, which held the pub/sub subscriptions of its drop-in multiplexer, and has no other multiplexer yet: {Handlers} handler subscriptions wait for the next one; ChannelMessageQueue subscriptions were completed and must be subscribed again")]
    public static partial void SubscriptionsWaiting(ILogger logger, string pool, string from, int handlers);
}
