using System.Diagnostics;
using static RedisPoolKit.RedisPoolInstrumentNames;

namespace RedisPoolKit;

/// <summary>
/// ActivitySource "RedisPoolKit": spans around the places a caller can wait (lease, admission) and around socket
/// creation, and breaker transitions as events on the current span. Every helper returns <see langword="null"/>
/// (and allocates nothing) when no listener samples the span. Tags carry pool names and endpoints only, never
/// the configuration string.
/// </summary>
internal static class RedisPoolActivity
{
    public static readonly ActivitySource Source = new(ActivitySourceName, typeof(RedisPoolActivity).Assembly.GetName().Version?.ToString());

    /// <summary>Starts the span of a caller waiting for a lease; dispose it when the wait ends.</summary>
    public static Activity? StartLeaseWait(string poolName) => Start(LeaseWaitActivity, poolName);

    /// <summary>Starts the span of a command queued for admission; start it only when the command really queues.</summary>
    public static Activity? StartAdmissionWait(string poolName) => Start(AdmissionWaitActivity, poolName);

    /// <summary>Starts the span of opening one socket.</summary>
    public static Activity? StartSocketCreate(string poolName, SocketRole role, string endPoints)
    {
        var activity = Start(SocketCreateActivity, poolName);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(RoleTag, Format(role));
            activity.SetTag(ServerAddressTag, endPoints);
        }

        return activity;
    }

    /// <summary>Marks a span failed with the exception's type; the message stays out (StackExchange.Redis texts are not ours to vouch for).</summary>
    public static void SetFailed(Activity? activity, Exception exception)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, exception.GetType().Name);
        if (activity.IsAllDataRequested && exception is RedisPoolExhaustedException exhausted)
        {
            activity.SetTag(ReasonTag, Format(exhausted.Reason));
        }
    }

    /// <summary>Adds the breaker transition as an event on <see cref="Activity.Current"/>, when it is being recorded.</summary>
    public static void AddCircuitTransition(RedisPoolCircuitStateChangedEventArgs transition)
    {
        var current = Activity.Current;
        if (current is not { IsAllDataRequested: true })
        {
            return;
        }

        current.AddEvent(new ActivityEvent(CircuitTransitionEvent, tags: new ActivityTagsCollection
        {
            [PoolNameTag] = transition.PoolName,
            [CircuitFromTag] = Format(transition.PreviousState),
            [CircuitToTag] = Format(transition.State),
        }));
    }

    private static Activity? Start(string name, string poolName)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity(name, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(PoolNameTag, poolName);
        }

        return activity;
    }
}
