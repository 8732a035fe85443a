using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// A transaction on the pool's database. Its commands and conditions queue on one multiplexer and go out on
/// <c>Execute</c>, which is admitted like one command and released when EXEC answers: it waits while admission is full
/// or held for a Sentinel failover, and when that multiplexer has left the master meanwhile, nothing is sent: the
/// queued commands fail and <c>Execute</c> throws <see cref="RedisPoolException"/>.
/// </summary>
[GenerateForwarding(typeof(ITransaction), nameof(Inner))]
internal sealed partial class PooledTransaction : ITransaction
{
    private readonly CommandRouter _router;
    private readonly MultiplexerEntry _entry;

    public PooledTransaction(CommandRouter router, MultiplexerEntry entry, ITransaction inner, IConnectionMultiplexer facade)
    {
        _router = router;
        _entry = entry;
        Inner = inner;
        Multiplexer = facade;
    }

    private ITransaction Inner { get; }

    public IConnectionMultiplexer Multiplexer { get; }

    // StackExchange.Redis sends a transaction executed this way fire-and-forget.
    public void Execute() => Execute(CommandFlags.FireAndForget);

    public bool Execute(CommandFlags flags)
    {
        var route = _router.RoutePinned(_entry, () => Inner.Execute(flags), "transaction");
        Exception? failure = null;
        try
        {
            return Inner.Execute(flags);
        }
        catch (Exception ex)
        {
            failure = ex;
            throw;
        }
        finally
        {
            _router.Exit(route, failure);
        }
    }

    public Task<bool> ExecuteAsync(CommandFlags flags = CommandFlags.None)
    {
        if (!_router.TryRoutePinned(_entry, out var route))
        {
            return ExecuteQueuedAsync(flags);
        }

        return Start(route, flags);
    }

    private async Task<bool> ExecuteQueuedAsync(CommandFlags flags)
    {
        var route = await _router.RoutePinnedAsync(_entry, () => Inner.ExecuteAsync(flags), "transaction").ConfigureAwait(false);
        return await Start(route, flags).ConfigureAwait(false);
    }

    private Task<bool> Start(CommandRoute route, CommandFlags flags)
    {
        Task<bool> task;
        try
        {
            task = Inner.ExecuteAsync(flags);
        }
        catch (Exception ex)
        {
            _router.Exit(route, ex);
            throw;
        }

        return _router.Track(route, task);
    }
}
