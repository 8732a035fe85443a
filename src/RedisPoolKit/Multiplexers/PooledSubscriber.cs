using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The facade's <see cref="ISubscriber"/>: subscribing and unsubscribing go through the <see cref="SubscriptionBinding"/>,
/// which records them so they survive the bound member leaving the pool; everything else (publish, ping, endpoint
/// queries) is generated and forwards to the bound member.
/// </summary>
[GenerateForwarding(typeof(ISubscriber), nameof(Target))]
internal sealed partial class PooledSubscriber : ISubscriber
{
    private readonly SubscriptionBinding _binding;
    private readonly IConnectionMultiplexer _facade;
    private readonly object? _asyncState;
    private BoundSubscriber? _target;

    public PooledSubscriber(SubscriptionBinding binding, IConnectionMultiplexer facade, object? asyncState)
    {
        _binding = binding;
        _facade = facade;
        _asyncState = asyncState;
    }

    /// <summary>The multiplexer callers see is the facade, as for the pool's databases.</summary>
    public IConnectionMultiplexer Multiplexer => _facade;

    private ISubscriber Target
    {
        get
        {
            var member = _binding.Member;
            var target = Volatile.Read(ref _target);
            if (target is not null && ReferenceEquals(target.Member, member))
            {
                return target.Subscriber;
            }

            var subscriber = member.GetSubscriber(_asyncState);
            Volatile.Write(ref _target, new BoundSubscriber(member, subscriber));
            return subscriber;
        }
    }

    public void Subscribe(RedisChannel channel, Action<RedisChannel, RedisValue> handler, CommandFlags flags = CommandFlags.None)
        => _binding.Subscribe(_asyncState, channel, handler, flags);

    public Task SubscribeAsync(RedisChannel channel, Action<RedisChannel, RedisValue> handler, CommandFlags flags = CommandFlags.None)
        => _binding.SubscribeAsync(_asyncState, channel, handler, flags);

    /// <remarks>The queue completes if the member it was created on leaves the pool; subscribe again then (see <see cref="SubscriptionBinding"/>).</remarks>
    public ChannelMessageQueue Subscribe(RedisChannel channel, CommandFlags flags = CommandFlags.None)
        => _binding.Subscribe(_asyncState, channel, flags);

    /// <inheritdoc cref="Subscribe(RedisChannel, CommandFlags)"/>
    public Task<ChannelMessageQueue> SubscribeAsync(RedisChannel channel, CommandFlags flags = CommandFlags.None)
        => _binding.SubscribeAsync(_asyncState, channel, flags);

    public void Unsubscribe(RedisChannel channel, Action<RedisChannel, RedisValue>? handler = null, CommandFlags flags = CommandFlags.None)
        => _binding.Unsubscribe(_asyncState, channel, handler, flags);

    public Task UnsubscribeAsync(RedisChannel channel, Action<RedisChannel, RedisValue>? handler = null, CommandFlags flags = CommandFlags.None)
        => _binding.UnsubscribeAsync(_asyncState, channel, handler, flags);

    public void UnsubscribeAll(CommandFlags flags = CommandFlags.None) => _binding.UnsubscribeAll(_asyncState, flags);

    public Task UnsubscribeAllAsync(CommandFlags flags = CommandFlags.None) => _binding.UnsubscribeAllAsync(_asyncState, flags);

    /// <summary>A reference, so a reader never sees one member's subscriber paired with another member.</summary>
    private sealed record BoundSubscriber(IConnectionMultiplexer Member, ISubscriber Subscriber);
}
