using Microsoft.Extensions.Logging.Abstractions;
using RedisPoolKit.Tests.Generators;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Pool;

public sealed class SubscriptionBindingTests
{
    private static readonly RedisChannel Orders = RedisChannel.Literal("orders");
    private static readonly RedisChannel Carts = RedisChannel.Pattern("carts:*");

    private readonly Member _a = new("mux0");
    private readonly Member _b = new("mux1");
    private readonly Member _c = new("mux2");
    private readonly List<Member> _members = [];
    private readonly SubscriptionBinding _binding;
    private int _connects;

    public SubscriptionBindingTests()
    {
        _members.Add(_a);
        _members.Add(_b);
        _binding = new SubscriptionBinding(
            "test",
            NullLogger.Instance,
            oldest: () => _members.Count > 0 ? _members[0].Multiplexer : null,
            connect: () =>
            {
                _connects++;
                return _members[0].Multiplexer;
            });
    }

    [Fact]
    public void Binds_to_the_oldest_member()
    {
        Assert.Same(_a.Multiplexer, _binding.Member);
        Assert.Equal(0, _connects);
    }

    [Fact]
    public void Connects_the_first_member_when_none_exists()
    {
        var binding = new SubscriptionBinding("test", NullLogger.Instance, () => null, () =>
        {
            _connects++;
            return _c.Multiplexer;
        });

        Assert.Same(_c.Multiplexer, binding.Member);
        Assert.Equal(1, _connects);
    }

    [Fact]
    public async Task Handler_subscriptions_move_to_the_next_member_when_the_bound_one_leaves()
    {
        Action<RedisChannel, RedisValue> onOrder = (_, _) => { };
        Action<RedisChannel, RedisValue> onCart = (_, _) => { };
        await _binding.SubscribeAsync(null, Orders, onOrder, CommandFlags.None);
        _binding.Subscribe(null, Carts, onCart, CommandFlags.None);

        Leave(_a);
        await _binding.Moves;

        Assert.Same(_b.Multiplexer, _binding.Member);
        Assert.Equal([(Orders, onOrder), (Carts, onCart)], _b.Subscribed());
        Assert.Equal(1, _a.LeftAll());
        Assert.Equal(2, _binding.Count);
    }

    [Fact]
    public async Task A_member_that_is_not_bound_leaves_without_moving_anything()
    {
        await _binding.SubscribeAsync(null, Orders, (_, _) => { }, CommandFlags.None);

        Leave(_b);
        await _binding.Moves;

        Assert.Same(_a.Multiplexer, _binding.Member);
        Assert.Empty(_b.Calls("SubscribeAsync"));
        Assert.Equal(0, _a.LeftAll());
        Assert.Equal(0, _b.LeftAll());
    }

    [Fact]
    public async Task Unsubscribed_handlers_do_not_move()
    {
        Action<RedisChannel, RedisValue> first = (_, _) => { };
        Action<RedisChannel, RedisValue> second = (_, _) => { };
        await _binding.SubscribeAsync(null, Orders, first, CommandFlags.None);
        await _binding.SubscribeAsync(null, Orders, second, CommandFlags.None);
        await _binding.SubscribeAsync(null, Carts, first, CommandFlags.None);
        await _binding.UnsubscribeAsync(null, Orders, first, CommandFlags.None);
        _binding.Unsubscribe(null, Carts, null, CommandFlags.None);

        Leave(_a);
        await _binding.Moves;

        Assert.Equal([(Orders, second)], _b.Subscribed());
    }

    [Fact]
    public async Task The_same_handler_twice_moves_twice_and_one_unsubscribe_removes_one()
    {
        Action<RedisChannel, RedisValue> handler = (_, _) => { };
        await _binding.SubscribeAsync(null, Orders, handler, CommandFlags.None);
        await _binding.SubscribeAsync(null, Orders, handler, CommandFlags.None);
        await _binding.UnsubscribeAsync(null, Orders, handler, CommandFlags.None);

        Leave(_a);
        await _binding.Moves;

        Assert.Equal([(Orders, handler)], _b.Subscribed());
    }

    [Fact]
    public async Task UnsubscribeAll_forgets_every_subscription()
    {
        await _binding.SubscribeAsync(null, Orders, (_, _) => { }, CommandFlags.None);
        await _binding.SubscribeAsync(null, Carts, (_, _) => { }, CommandFlags.None);
        await _binding.UnsubscribeAllAsync(null, CommandFlags.None);

        Leave(_a);
        await _binding.Moves;

        Assert.Single(_a.Calls("UnsubscribeAllAsync"));
        Assert.Empty(_b.Subscribed());
        Assert.Equal(0, _binding.Count);
    }

    [Fact]
    public async Task Subscriptions_wait_for_the_next_member_when_the_last_one_leaves()
    {
        Action<RedisChannel, RedisValue> handler = (_, _) => { };
        await _binding.SubscribeAsync(null, Orders, handler, CommandFlags.None);

        Leave(_b);
        Leave(_a);
        await _binding.Moves;
        Assert.Equal(1, _binding.Count);

        _members.Add(_c);
        _binding.OnMemberAdded(_c.Multiplexer);
        await _binding.Moves;

        Assert.Same(_c.Multiplexer, _binding.Member);
        Assert.Equal([(Orders, handler)], _c.Subscribed());
        Assert.Empty(_b.Subscribed());
    }

    [Fact]
    public async Task Closing_the_pool_moves_nothing_and_forgets_every_subscription()
    {
        await _binding.SubscribeAsync(null, Orders, (_, _) => { }, CommandFlags.None);

        _members.Clear();
        _binding.OnMemberRemoved(_a.Multiplexer, closing: true);
        _binding.OnMemberRemoved(_b.Multiplexer, closing: true);
        await _binding.Moves;

        Assert.Equal(1, _a.LeftAll());
        Assert.Empty(_b.Subscribed());
        Assert.Equal(0, _binding.Count);
    }

    [Fact]
    public async Task A_member_added_while_one_is_bound_changes_nothing()
    {
        await _binding.SubscribeAsync(null, Orders, (_, _) => { }, CommandFlags.None);

        _members.Add(_c);
        _binding.OnMemberAdded(_c.Multiplexer);
        await _binding.Moves;

        Assert.Same(_a.Multiplexer, _binding.Member);
        Assert.Empty(_c.Subscribed());
    }

    [Fact]
    public async Task The_facade_subscriber_publishes_on_the_bound_member_and_names_the_facade()
    {
        var (facade, _) = RecordingProxy.Create<IConnectionMultiplexer>();
        var subscriber = new PooledSubscriber(_binding, facade, asyncState: null);

        await subscriber.PublishAsync(Orders, "before");
        Leave(_a);
        await _binding.Moves;
        await subscriber.PublishAsync(Orders, "after");

        Assert.Same(facade, subscriber.Multiplexer);
        Assert.Equal(["before"], _a.Calls("PublishAsync").Select(c => (string?)(RedisValue)c[1]!));
        Assert.Equal(["after"], _b.Calls("PublishAsync").Select(c => (string?)(RedisValue)c[1]!));
    }

    private void Leave(Member member)
    {
        _members.Remove(member);
        _binding.OnMemberRemoved(member.Multiplexer, closing: false);
    }

    /// <summary>A fake member: a multiplexer whose subscriber records every call.</summary>
    private sealed class Member
    {
        private readonly RecordingProxy _subscriber;

        public Member(string name)
        {
            var (subscriber, recorder) = RecordingProxy.Create<ISubscriber>();
            _subscriber = recorder;
            recorder.Results["SubscribeAsync"] = Task.CompletedTask;
            recorder.Results["UnsubscribeAsync"] = Task.CompletedTask;
            recorder.Results["UnsubscribeAllAsync"] = Task.CompletedTask;
            recorder.Results["PublishAsync"] = Task.FromResult(1L);
            var (multiplexer, multiplexerRecorder) = RecordingProxy.Create<IConnectionMultiplexer>();
            multiplexerRecorder.Results["GetSubscriber"] = subscriber;
            multiplexerRecorder.Results["get_ClientName"] = name;
            Multiplexer = multiplexer;
        }

        public IConnectionMultiplexer Multiplexer { get; }

        public List<object?[]> Calls(string name) => [.. _subscriber.Calls.Where(c => c.Name == name).Select(c => c.Args)];

        /// <summary>Handler subscriptions sent to this member, in order.</summary>
        public List<(RedisChannel, Action<RedisChannel, RedisValue>)> Subscribed()
            => [.. _subscriber.Calls.Where(c => c.Name is "Subscribe" or "SubscribeAsync").Select(c => ((RedisChannel)c.Args[0]!, (Action<RedisChannel, RedisValue>)c.Args[1]!))];

        /// <summary>How often everything subscribed here was dropped at once, as it is when this member leaves.</summary>
        public int LeftAll() => _subscriber.Calls.Count(c => c.Name == "UnsubscribeAll");
    }
}
