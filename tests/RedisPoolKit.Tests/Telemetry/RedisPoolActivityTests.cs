using System.Diagnostics;
using static RedisPoolKit.RedisPoolInstrumentNames;

namespace RedisPoolKit.Tests.Telemetry;

// One class: the ActivitySource is static, and these tests add and remove listeners on it.
public sealed class RedisPoolActivityTests
{
    private static ActivityListener Listen(ActivitySamplingResult sampling, List<Activity>? stopped = null)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => sampling,
            ActivityStopped = activity => stopped?.Add(activity),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    [Fact]
    public void Spans_carry_the_pool_name_when_sampled()
    {
        var stopped = new List<Activity>();
        using var listener = Listen(ActivitySamplingResult.AllDataAndRecorded, stopped);

        using (var wait = RedisPoolActivity.StartLeaseWait("orders"))
        {
            Assert.NotNull(wait);
        }

        using (var create = RedisPoolActivity.StartSocketCreate("orders", SocketRole.Lease, "127.0.0.1:6379"))
        {
            RedisPoolActivity.SetFailed(create, new RedisPoolExhaustedException(RedisPoolExhaustedReason.BudgetExhausted, "full"));
        }

        using (RedisPoolActivity.StartAdmissionWait("orders"))
        {
        }

        Assert.Equal([LeaseWaitActivity, SocketCreateActivity, AdmissionWaitActivity], stopped.Select(a => a.OperationName));
        Assert.All(stopped, a => Assert.Equal("orders", a.GetTagItem(PoolNameTag)));
        var socket = stopped[1];
        Assert.Equal("lease", socket.GetTagItem(RoleTag));
        Assert.Equal("127.0.0.1:6379", socket.GetTagItem(ServerAddressTag));
        Assert.Equal(ActivityStatusCode.Error, socket.Status);
        Assert.Equal("budget_exhausted", socket.GetTagItem(ReasonTag));
    }

    [Fact]
    public void Nothing_is_created_when_not_sampled()
    {
        using var listener = Listen(ActivitySamplingResult.None);

        Assert.Null(RedisPoolActivity.StartLeaseWait("orders"));
        Assert.Null(RedisPoolActivity.StartAdmissionWait("orders"));
        Assert.Null(RedisPoolActivity.StartSocketCreate("orders", SocketRole.Multiplexer, "127.0.0.1:6379"));
    }

    [Fact]
    public void Breaker_transitions_are_events_on_the_current_span()
    {
        using var listener = Listen(ActivitySamplingResult.AllDataAndRecorded);
        using var current = RedisPoolActivity.StartLeaseWait("orders");
        Assert.Same(current, Activity.Current);

        RedisPoolActivity.AddCircuitTransition(new RedisPoolCircuitStateChangedEventArgs("orders", RedisPoolCircuitState.Closed, RedisPoolCircuitState.Open, "max clients", TimeSpan.FromSeconds(5)));

        var transition = Assert.Single(current!.Events);
        Assert.Equal(CircuitTransitionEvent, transition.Name);
        var tags = transition.Tags.ToDictionary(t => t.Key, t => t.Value);
        Assert.Equal("closed", tags[CircuitFromTag]);
        Assert.Equal("open", tags[CircuitToTag]);
        Assert.Equal("orders", tags[PoolNameTag]);
    }
}
