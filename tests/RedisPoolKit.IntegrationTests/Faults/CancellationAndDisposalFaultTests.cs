using System.Diagnostics;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;
using static RedisPoolKit.IntegrationTests.Faults.FaultGuarantees;

namespace RedisPoolKit.IntegrationTests.Faults;

/// <summary>
/// Cancellation at each stage of a lease (queued, admitted and connecting, leased, blocking) and disposal under
/// load: every caller gets an answer, and no slot, permit or socket is lost.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class CancellationAndDisposalFaultTests(ITestOutputHelper output) : RedisTestBase(output)
{
    /// <summary>
    /// A cancellation is honoured, not a wait run out: every wait cancelled here is at least 3 s (AcquireTimeout 30 s,
    /// ConnectTimeout 3 s, BLPOP 30 s), and the answer must come before it. It takes milliseconds on a quiet machine;
    /// a starved 2-core machine may run the callback a second or more late.
    /// </summary>
    private static readonly TimeSpan s_promptly = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Cancelling_a_queued_lease_waiter_answers_it_and_frees_its_place()
    {
        var server = await StartServerAsync();
        var options = Options("cancel-queued", server.ConnectionString);
        options.Leases.MaxLeases = 1;
        options.Leases.AcquireTimeout = TimeSpan.FromSeconds(30);
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        var held = await pool.LeaseAsync();

        using var cancel = new CancellationTokenSource();
        var waiting = Timed(async () => await pool.LeaseAsync(cancel.Token));
        await Eventually.TrueAsync(() => pool.GetStatistics().LeaseWaiters == 1, SettleDeadline, "the second caller to queue");
        var cancelledAt = Stopwatch.StartNew();
        await cancel.CancelAsync();
        var (_, error) = await waiting;
        var answered = cancelledAt.Elapsed;

        Output.WriteLine($"queued waiter answered {answered.TotalMilliseconds:F1} ms after cancellation: {error?.GetType().Name}");
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.True(answered < s_promptly, $"{answered.TotalMilliseconds:F0} ms");
        Assert.Equal(0, pool.GetStatistics().LeaseWaiters);
        await held.DisposeAsync();
        await using (var next = await pool.LeaseAsync())
        {
            Assert.True(await next.Database.StringSetAsync("cancel-queued:k", "1"));
        }

        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Cancelling_an_admitted_lease_while_its_socket_connects_returns_the_slot()
    {
        var server = await StartServerAsync();
        var proxy = StartProxy(server);
        var options = Options("cancel-connecting", proxy.ConnectionString);
        options.ConnectTimeout = TimeSpan.FromSeconds(3);
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();
        var usedBefore = pool.Budget.Used;

        // New sockets reach a proxy that never answers: the lease's connect hangs until cancelled.
        proxy.SetFault(ProxyFault.Blackhole, FaultScope.NewConnections);
        using var cancel = new CancellationTokenSource();
        var leasing = Timed(async () => await pool.LeaseAsync(cancel.Token));
        await Eventually.TrueAsync(() => pool.Budget.Used == usedBefore + 1, SettleDeadline, "the lease to take a slot and connect");
        var cancelledAt = Stopwatch.StartNew();
        await cancel.CancelAsync();
        var (_, error) = await leasing;
        var answered = cancelledAt.Elapsed;

        Output.WriteLine($"connecting lease answered {answered.TotalMilliseconds:F1} ms after cancellation: {error?.GetType().Name}");
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.True(answered < s_promptly, $"{answered.TotalMilliseconds:F0} ms");

        // The slot stays taken while the abandoned socket may still connect (never longer than ConnectTimeout), so the
        // server can never see more sockets than the budget; then it comes back.
        await Eventually.TrueAsync(() => pool.Budget.Used == usedBefore, SettleDeadline, "the connecting socket's slot to come back");
        Output.WriteLine($"its slot came back {cancelledAt.Elapsed.TotalMilliseconds:F0} ms after cancellation (ConnectTimeout {options.ConnectTimeout.TotalSeconds:F0} s)");

        proxy.Heal();
        await using (var next = await pool.LeaseAsync())
        {
            Assert.True(await next.Database.StringSetAsync("cancel-connecting:k", "1"));
        }

        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task A_token_cancelled_while_leased_fails_the_blocking_call_at_once_and_the_socket_stays_clean()
    {
        var server = await StartServerAsync();
        await using var pool = new RedisPool(Options("cancel-leased", server.ConnectionString));
        await pool.ConnectAsync();
        await using var lease = await pool.LeaseAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lease.BlockingLeftPopAsync(["cancel-leased:queue"], TimeSpan.FromSeconds(5), cancelled.Token));

        // Nothing was sent: the next reply on the socket is the next command's.
        await server.Admin.GetDatabase().ListRightPushAsync("cancel-leased:queue", "item");
        var popped = await lease.BlockingLeftPopAsync(["cancel-leased:queue"], TimeSpan.FromSeconds(5));
        Assert.Equal("item", popped?.Value);
        await lease.DisposeAsync();
        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Cancelling_a_blocking_command_unblocks_it_loses_no_item_and_returns_the_lease()
    {
        var server = await StartServerAsync();
        var options = Options("cancel-blocking", server.ConnectionString);
        options.Leases.MaxLeases = 1;
        await using var pool = new RedisPool(options);
        await pool.ConnectAsync();

        using var cancel = new CancellationTokenSource();
        var lease = await pool.LeaseAsync();
        var blocking = Timed(() => lease.BlockingLeftPopAsync(["cancel-blocking:queue"], TimeSpan.FromSeconds(30), cancel.Token));
        await Eventually.TrueAsync(async () => (await server.InfoAsync("clients"))["blocked_clients"] == "1", SettleDeadline, "the BLPOP to block on the server");
        var cancelledAt = Stopwatch.StartNew();
        await cancel.CancelAsync();
        var (_, error) = await blocking;
        var answered = cancelledAt.Elapsed;
        await lease.DisposeAsync();

        Output.WriteLine($"BLPOP answered {answered.TotalMilliseconds:F1} ms after cancellation: {error?.GetType().Name}");
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.True(answered < s_promptly, $"{answered.TotalMilliseconds:F0} ms");
        Assert.Equal("0", (await server.InfoAsync("clients"))["blocked_clients"]);

        // The item pushed after the cancel stays in the list for the next consumer, on the same single lease slot.
        await server.Admin.GetDatabase().ListRightPushAsync("cancel-blocking:queue", "item");
        Assert.Equal(1, await server.Admin.GetDatabase().ListLengthAsync("cancel-blocking:queue"));
        await using (var next = await pool.LeaseAsync())
        {
            Assert.Equal("item", (await next.BlockingLeftPopAsync(["cancel-blocking:queue"], TimeSpan.FromSeconds(5)))?.Value);
        }

        await AssertSettledAsync(pool, server, Output);
    }

    [Fact]
    public async Task Dispose_under_load_is_bounded_answers_every_caller_and_leaves_no_socket()
    {
        var server = await StartServerAsync();
        var options = Options("dispose-load", server.ConnectionString);
        options.ShutdownGracePeriod = TimeSpan.FromMilliseconds(500);
        var pool = new RedisPool(options);
        await pool.ConnectAsync();
        var load = new IncrementLoad(pool.GetDatabase(), "dispose-load:counter", workers: 8);
        var consumers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            await using var lease = await pool.LeaseAsync();
            await lease.BlockingLeftPopAsync(["dispose-load:queue"], TimeSpan.FromSeconds(30));
        })).ToArray();
        await Eventually.TrueAsync(async () => load.Successes > 100 && (await server.InfoAsync("clients"))["blocked_clients"] == "2", SettleDeadline, "load and two blocked consumers");

        var watch = Stopwatch.StartNew();
        await pool.DisposeAsync();
        var disposal = watch.Elapsed;
        await load.StopAsync();
        var consumerErrors = new List<Exception?>();
        foreach (var consumer in consumers)
        {
            consumerErrors.Add((await Timed(() => consumer)).Error);
        }

        Output.WriteLine($"disposal under load took {disposal.TotalMilliseconds:F0} ms (ShutdownGracePeriod 500 ms); {load.Summary()}; consumers: {string.Join(", ", consumerErrors.Select(e => e?.GetType().Name ?? "ok"))}");

        // Bounded by the grace period; 4 s more for a starved 2-core machine still tells it apart from waiting on the 30 s BLPOPs.
        Assert.True(disposal < options.ShutdownGracePeriod + TimeSpan.FromSeconds(4), $"dispose took {disposal.TotalMilliseconds:F0} ms");
        Assert.All(load.Errors, e => Assert.True(e is ObjectDisposedException or RedisConnectionException, e.ToString()));
        Assert.All(consumerErrors, e => Assert.True(e is ObjectDisposedException or RedisConnectionException or OperationCanceledException, $"{e}"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.GetDatabase().StringGetAsync("dispose-load:k"));
        await Eventually.TrueAsync(async () => await SocketsOnServerAsync(server, "dispose-load") == 0, SettleDeadline, "the pool's sockets to leave the server");
        Assert.Equal(0, pool.Budget.Used);
        await load.DisposeAsync();
    }

    [Fact]
    public async Task Double_dispose_concurrent_and_sequential_is_harmless()
    {
        var server = await StartServerAsync();
        var options = Options("double-dispose", server.ConnectionString);
        options.ShutdownGracePeriod = TimeSpan.FromMilliseconds(300);
        var pool = new RedisPool(options);
        await pool.ConnectAsync();
        var lease = await pool.LeaseAsync();

        await Task.WhenAll(pool.DisposeAsync().AsTask(), pool.DisposeAsync().AsTask(), Task.Run(pool.Dispose));
        await pool.DisposeAsync();
        pool.Dispose();
        await lease.DisposeAsync();
        await lease.DisposeAsync();

        Assert.Equal(0, pool.Budget.Used);
        Assert.Throws<ObjectDisposedException>(() => pool.GetDatabase());
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pool.LeaseAsync());
        await Eventually.TrueAsync(async () => await SocketsOnServerAsync(server, "double-dispose") == 0, SettleDeadline, "the pool's sockets to leave the server");
    }
}
