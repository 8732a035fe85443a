using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Pub/sub of the drop-in facade: bound to one member of the set (the oldest, which scale-in never retires), with a
/// record of every handler subscription made through the facade. StackExchange.Redis re-subscribes on its own
/// reconnects, but a member the pool retires, replaces or disposes takes its subscriptions with it; this moves the
/// handler subscriptions to the next member.
/// </summary>
/// <remarks>
/// A <see cref="ChannelMessageQueue"/> cannot move: only the multiplexer that created it can write to it, and its
/// constructor is internal. When its member leaves, everything subscribed there is dropped, so the queue completes
/// (its reader ends) instead of going silent, and the caller subscribes again. Queues are not recorded: one
/// unsubscribed through its own <c>Unsubscribe</c> completes only once its buffered messages are read, so a record
/// waiting for that could outlive it for good. Subscriptions live per facade, as they do per multiplexer in
/// StackExchange.Redis: every subscriber the facade hands out shares them.
/// </remarks>
internal sealed class SubscriptionBinding
{
    private readonly string _pool;
    private readonly ILogger _logger;
    private readonly Func<IConnectionMultiplexer?> _oldest;
    private readonly Func<IConnectionMultiplexer> _connect;
    private readonly object _lock = new();
    private readonly List<Subscription> _subscriptions = [];
    private IConnectionMultiplexer? _bound;
    private Task _moves = Task.CompletedTask;

    /// <param name="pool">The pool name, for logs.</param>
    /// <param name="logger">Logs each move.</param>
    /// <param name="oldest">The oldest current member, or null when none exists.</param>
    /// <param name="connect">Connects the first member (bounded by ConnectTimeout) when none exists.</param>
    public SubscriptionBinding(string pool, ILogger logger, Func<IConnectionMultiplexer?> oldest, Func<IConnectionMultiplexer> connect)
    {
        _pool = pool;
        _logger = logger;
        _oldest = oldest;
        _connect = connect;
    }

    /// <summary>The member subscriptions and publishes go to, binding (and connecting) one when none is bound.</summary>
    public IConnectionMultiplexer Member
    {
        get
        {
            var bound = Volatile.Read(ref _bound);
            return bound ?? Bind();
        }
    }

    /// <summary>Completes when every move started so far has finished.</summary>
    public Task Moves
    {
        get
        {
            lock (_lock)
            {
                return _moves;
            }
        }
    }

    /// <summary>Raised before every subscription made through the facade (the pool says once what it costs on a shared socket).</summary>
    public event Action? Subscribing;

    /// <summary>Subscriptions recorded now, for tests and status.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _subscriptions.Count;
            }
        }
    }

    /// <summary>A member joined: binds it when the last bound one left with nothing to take its place.</summary>
    public void OnMemberAdded(IConnectionMultiplexer member)
    {
        lock (_lock)
        {
            if (_bound is not null)
            {
                return;
            }

            var bound = _oldest() ?? member;
            _bound = bound;
            List<Subscription> moving = [.. _subscriptions];
            if (moving.Count > 0)
            {
                _moves = MoveAsync(_moves, from: null, bound, moving, closing: false);
            }
        }
    }

    /// <summary>
    /// A member left the set: moves the subscriptions if it was the bound one. When the pool is
    /// <paramref name="closing"/> nothing moves and every subscription is forgotten (its queues complete).
    /// </summary>
    public void OnMemberRemoved(IConnectionMultiplexer member, bool closing)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_bound, member))
            {
                return;
            }

            var next = closing ? null : _oldest();
            _bound = next;
            List<Subscription> moving = closing ? [] : [.. _subscriptions];
            if (closing)
            {
                _subscriptions.Clear();
            }

            // Even with no handler to move: dropping everything on the leaving member completes its queues.
            _moves = MoveAsync(_moves, member, next, moving, closing);
        }
    }

    /// <remarks>
    /// The record stays when SUBSCRIBE fails: StackExchange.Redis registers the handler before it sends, and
    /// subscribes it again when the connection is restored.
    /// </remarks>
    public void Subscribe(object? asyncState, RedisChannel channel, Action<RedisChannel, RedisValue> handler, CommandFlags flags)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Subscribing?.Invoke();
        var subscription = new Subscription(channel, handler, flags);
        var member = Record(subscription);
        member.GetSubscriber(asyncState).Subscribe(channel, handler, flags);
        LeaveIfMoved(member, subscription);
    }

    /// <inheritdoc cref="Subscribe(object?, RedisChannel, Action{RedisChannel, RedisValue}, CommandFlags)"/>
    public async Task SubscribeAsync(object? asyncState, RedisChannel channel, Action<RedisChannel, RedisValue> handler, CommandFlags flags)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Subscribing?.Invoke();
        var subscription = new Subscription(channel, handler, flags);
        var member = Record(subscription);
        await member.GetSubscriber(asyncState).SubscribeAsync(channel, handler, flags).ConfigureAwait(false);
        LeaveIfMoved(member, subscription);
    }

    public ChannelMessageQueue Subscribe(object? asyncState, RedisChannel channel, CommandFlags flags)
    {
        Subscribing?.Invoke();
        while (true)
        {
            var member = Member;
            var queue = member.GetSubscriber(asyncState).Subscribe(channel, flags);
            if (StillBound(member, queue))
            {
                return queue;
            }
        }
    }

    public async Task<ChannelMessageQueue> SubscribeAsync(object? asyncState, RedisChannel channel, CommandFlags flags)
    {
        Subscribing?.Invoke();
        while (true)
        {
            var member = Member;
            var queue = await member.GetSubscriber(asyncState).SubscribeAsync(channel, flags).ConfigureAwait(false);
            if (StillBound(member, queue))
            {
                return queue;
            }
        }
    }

    public void Unsubscribe(object? asyncState, RedisChannel channel, Action<RedisChannel, RedisValue>? handler, CommandFlags flags)
        => Forget(channel, handler).GetSubscriber(asyncState).Unsubscribe(channel, handler, flags);

    public Task UnsubscribeAsync(object? asyncState, RedisChannel channel, Action<RedisChannel, RedisValue>? handler, CommandFlags flags)
        => Forget(channel, handler).GetSubscriber(asyncState).UnsubscribeAsync(channel, handler, flags);

    public void UnsubscribeAll(object? asyncState, CommandFlags flags) => ForgetAll().GetSubscriber(asyncState).UnsubscribeAll(flags);

    public Task UnsubscribeAllAsync(object? asyncState, CommandFlags flags) => ForgetAll().GetSubscriber(asyncState).UnsubscribeAllAsync(flags);

    private IConnectionMultiplexer Bind()
    {
        // Connecting the first member raises the set's Added event, which binds it; this covers a member that exists already.
        var member = _oldest() ?? _connect();
        OnMemberAdded(member);
        return Volatile.Read(ref _bound) ?? member;
    }

    /// <summary>Records a handler subscription and returns the member to send it to, in one step with respect to moves.</summary>
    private IConnectionMultiplexer Record(Subscription subscription)
    {
        var member = Member;
        lock (_lock)
        {
            _subscriptions.Add(subscription);

            // A move that ran between reading the member and taking the lock did not see this record: follow it.
            return _bound ?? member;
        }
    }

    /// <summary>
    /// After subscribing on <paramref name="member"/>: if a move took the subscription elsewhere meanwhile, the
    /// leaving member must not keep delivering it (the move subscribed it on the new member already).
    /// </summary>
    private void LeaveIfMoved(IConnectionMultiplexer member, Subscription subscription)
    {
        if (!ReferenceEquals(Volatile.Read(ref _bound), member))
        {
            TryLeave(member, subscription);
        }
    }

    /// <summary>
    /// True when the queue's member is still the bound one: a later move drops everything there, completing the queue.
    /// Otherwise its member left while it was being created (the move may have run before it existed): it is ended
    /// there and the caller subscribes again on the bound one.
    /// </summary>
    private bool StillBound(IConnectionMultiplexer member, ChannelMessageQueue queue)
    {
        if (ReferenceEquals(Volatile.Read(ref _bound), member))
        {
            return true;
        }

        TryLeave(member, queue.Channel);
        return false;
    }

    private IConnectionMultiplexer Forget(RedisChannel channel, Action<RedisChannel, RedisValue>? handler)
    {
        var member = Member;
        lock (_lock)
        {
            if (handler is null)
            {
                _subscriptions.RemoveAll(s => s.Channel == channel);
            }
            else
            {
                // StackExchange.Redis removes one registration of the handler (Delegate.Remove): the last one.
                var last = _subscriptions.FindLastIndex(s => s.Channel == channel && s.Handler == handler);
                if (last >= 0)
                {
                    _subscriptions.RemoveAt(last);
                }
            }

            return _bound ?? member;
        }
    }

    private IConnectionMultiplexer ForgetAll()
    {
        var member = Member;
        lock (_lock)
        {
            _subscriptions.Clear();
            return _bound ?? member;
        }
    }

    private async Task MoveAsync(Task previous, IConnectionMultiplexer? from, IConnectionMultiplexer? to, List<Subscription> moving, bool closing)
    {
        // Moves apply in the order members leave, off the set's thread; a caller never waits for one.
        await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding);
        if (from is not null)
        {
            TryLeaveAll(from);
        }

        if (to is null)
        {
            if (!closing)
            {
                Log.SubscriptionsWaiting(_logger, _pool, from?.ClientName ?? "none", moving.Count);
            }

            return;
        }

        var subscriber = to.GetSubscriber();
        var moved = 0;
        foreach (var subscription in moving)
        {
            if (!IsRecorded(subscription))
            {
                continue;
            }

            try
            {
                await subscriber.SubscribeAsync(subscription.Channel, subscription.Handler, subscription.Flags).ConfigureAwait(false);
                moved++;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
            {
                // The handler is registered with the member before SUBSCRIBE is sent, so its own reconnect finishes the job.
                Log.SubscriptionMoveFailed(_logger, _pool, (string?)subscription.Channel ?? string.Empty, to.ClientName, ex);
            }

            // Unsubscribed while it was moving: the caller's unsubscribe went to this member before it arrived.
            if (!IsRecorded(subscription))
            {
                TryLeave(to, subscription);
            }
        }

        Log.SubscriptionsMoved(_logger, _pool, from?.ClientName ?? "none", to.ClientName, moved);
    }

    private bool IsRecorded(Subscription subscription)
    {
        lock (_lock)
        {
            return _subscriptions.Contains(subscription);
        }
    }

    /// <summary>Drops one subscription from a member that is leaving (or left): it may be closed already.</summary>
    private static void TryLeave(IConnectionMultiplexer member, Subscription subscription)
    {
        try
        {
            member.GetSubscriber().Unsubscribe(subscription.Channel, subscription.Handler, CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or InvalidOperationException)
        {
            // Closed: it delivers nothing more.
        }
    }

    /// <summary>
    /// Drops a channel from a member that is leaving: every handler, and every queue, which completes so its reader
    /// ends. StackExchange.Redis completes the channel's queues before it sends UNSUBSCRIBE, so a closed member still does.
    /// </summary>
    private static void TryLeave(IConnectionMultiplexer member, RedisChannel channel)
    {
        try
        {
            member.GetSubscriber().Unsubscribe(channel, null, CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or InvalidOperationException)
        {
            // Closed: it delivers nothing more.
        }
    }

    /// <summary>
    /// Drops everything subscribed on a member that is leaving: its handlers are moving, and its queues complete so
    /// their readers end. StackExchange.Redis completes queues before it sends UNSUBSCRIBE, so a closed member still does.
    /// </summary>
    private static void TryLeaveAll(IConnectionMultiplexer member)
    {
        try
        {
            member.GetSubscriber().UnsubscribeAll(CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or InvalidOperationException)
        {
            // Closed: it delivers nothing more.
        }
    }

    /// <summary>One handler subscription made through the facade.</summary>
    private sealed record Subscription(RedisChannel Channel, Action<RedisChannel, RedisValue> Handler, CommandFlags Flags)
    {
        // Each subscribe call is its own record, even with the same handler twice (StackExchange.Redis delivers twice).
        public bool Equals(Subscription? other) => ReferenceEquals(this, other);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);
    }
}
