using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// A batch on the pool's database. Its commands queue on one multiplexer, since they must share a connection, and go
/// out on <see cref="Execute"/>, which is admitted like one command: it waits while admission is full or held for a
/// Sentinel failover, and when that multiplexer has left the master meanwhile, nothing is sent: the queued commands
/// fail and <see cref="Execute"/> throws <see cref="RedisPoolException"/>. The permit is returned once the batch is
/// written, since a batch has no completion of its own.
/// </summary>
[GenerateForwarding(typeof(IBatch), nameof(Inner))]
internal sealed partial class PooledBatch : IBatch
{
    private readonly CommandRouter _router;
    private readonly MultiplexerEntry _entry;

    public PooledBatch(CommandRouter router, MultiplexerEntry entry, IBatch inner, IConnectionMultiplexer facade)
    {
        _router = router;
        _entry = entry;
        Inner = inner;
        Multiplexer = facade;
    }

    private IBatch Inner { get; }

    public IConnectionMultiplexer Multiplexer { get; }

    public void Execute()
    {
        var route = _router.RoutePinned(_entry, Inner.Execute, "batch");
        Exception? failure = null;
        try
        {
            Inner.Execute();
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
}
