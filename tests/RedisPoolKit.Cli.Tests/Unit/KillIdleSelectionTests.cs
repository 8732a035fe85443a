using RedisPoolKit.Cli.Commands;
using static RedisPoolKit.Cli.Tests.Unit.Snapshots;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class KillIdleSelectionTests
{
    [Fact]
    public void Keeps_its_own_connection_replication_links_pubsub_and_blocked_clients()
    {
        var own = Client("redispool-cli-1", idle: 900);
        var replica = Client(idle: 900, flags: "S");
        var master = Client(idle: 900, flags: "M");
        var pubsubByFlag = Client("svc:i:p:mux0", idle: 900, flags: "P");
        var pubsubByCount = Client("svc:i:p:mux1", idle: 900, subscriptions: 2);
        var blocked = Client("svc:i:p:lease0", idle: 900, flags: "b", command: "blpop");
        var idle = Client("svc:i:p:lease1", idle: 900);
        var busy = Client("svc:i:p:lease2", idle: 1);
        var server = Server([own, replica, master, pubsubByFlag, pubsubByCount, blocked, idle, busy], own: [own.Id]);

        var (selected, skipped) = KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromMinutes(10)));

        Assert.Equal([idle.Id], selected.Select(c => c.Id));
        Assert.Equal(1, skipped[KillIdleCommand.SkippedOwn]);
        Assert.Equal(2, skipped[KillIdleCommand.SkippedReplication]);
        Assert.Equal(2, skipped[KillIdleCommand.SkippedPubSub]);
        Assert.Equal(1, skipped[KillIdleCommand.SkippedBlocked]);
    }

    [Fact]
    public void Includes_pubsub_and_blocked_clients_only_when_asked_and_never_replication()
    {
        var replica = Client(idle: 900, flags: "S");
        var pubsub = Client(idle: 900, flags: "P");
        var blocked = Client(idle: 900, flags: "b");
        var server = Server([replica, pubsub, blocked]);

        var (selected, skipped) = KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromMinutes(1), IncludePubSub: true, IncludeBlocked: true));

        Assert.Equal(new[] { pubsub.Id, blocked.Id }.Order(), selected.Select(c => c.Id).Order());
        Assert.Equal(1, skipped[KillIdleCommand.SkippedReplication]);
    }

    [Fact]
    public void Is_bounded_by_max_taking_the_longest_idle_first()
    {
        var clients = Enumerable.Range(1, 10).Select(i => Client($"svc:i:p:lease{i}", idle: 100 * i)).ToList();

        var (selected, skipped) = KillIdleCommand.Select([Server(clients)], new IdleCriteria(TimeSpan.FromSeconds(1), Max: 3));

        Assert.Equal([1000L, 900, 800], selected.Select(c => c.IdleSeconds));
        Assert.Equal(7, skipped[KillIdleCommand.SkippedOverMax]);
    }

    [Fact]
    public void Filters_by_service_pool_and_role_or_selects_unnamed_clients_only()
    {
        var cache = Client("orders:pod-1:cache:mux0", idle: 900);
        var queueLease = Client("orders:pod-1:queue:lease0", idle: 900);
        var billing = Client("billing:pod-1:cache:lease0", idle: 900);
        var unnamed = Client(idle: 900);
        var other = Client("sidekiq", idle: 900);
        var server = Server([cache, queueLease, billing, unnamed, other]);

        Assert.Equal(
            new[] { cache.Id, queueLease.Id }.Order(),
            KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromSeconds(1), Service: "orders")).Selected.Select(c => c.Id).Order());
        Assert.Equal([queueLease.Id], KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromSeconds(1), Pool: "queue", Role: "lease")).Selected.Select(c => c.Id));
        Assert.Equal([unnamed.Id], KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromSeconds(1), UnnamedOnly: true)).Selected.Select(c => c.Id));
        Assert.Equal(5, KillIdleCommand.Select([server], new IdleCriteria(TimeSpan.FromSeconds(1))).Selected.Count);
    }
}
