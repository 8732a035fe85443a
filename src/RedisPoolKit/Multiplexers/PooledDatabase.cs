using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// The pool's drop-in <see cref="IDatabase"/>: every command is admitted by the <see cref="CommandRouter"/>,
/// sent to the least-outstanding multiplexer and released on completion. The commands are generated from the
/// referenced StackExchange.Redis (RedisPoolKit.Generators); this part holds what is not a command:
/// <list type="bullet">
/// <item><see cref="Database"/> and <see cref="Multiplexer"/> describe the database, and the multiplexer callers see is the pool's facade.</item>
/// <item><see cref="CreateBatch"/> and <see cref="CreateTransaction"/> are pinned to one multiplexer: their commands must share one connection.
/// They are admitted on <c>Execute</c>, when their commands go out (<see cref="PooledBatch"/>, <see cref="PooledTransaction"/>).</item>
/// <item><see cref="IsConnected"/> asks a multiplexer and sends nothing.</item>
/// <item><c>Wait</c>, <c>WaitAll</c>, <c>TryWait</c> block on tasks the caller already has: admitting them would count a command twice.</item>
/// </list>
/// </summary>
[GenerateRoutedDatabase]
internal sealed partial class PooledDatabase : IDatabase
{
    private readonly CommandRouter _router;
    private readonly int _db;
    private readonly IConnectionMultiplexer _facade;

    public PooledDatabase(CommandRouter router, int db, IConnectionMultiplexer facade)
    {
        _router = router;
        _db = db;
        _facade = facade;
    }

    // -1 means the configuration's default database, which only a multiplexer knows.
    public int Database => _db >= 0 ? _db : _router.Pick(_db).Database;

    public IConnectionMultiplexer Multiplexer => _facade;

    public IBatch CreateBatch(object? asyncState = null)
    {
        var entry = _router.PickEntry();
        return new PooledBatch(_router, entry, entry.GetDatabase(_db).CreateBatch(asyncState), _facade);
    }

    public ITransaction CreateTransaction(object? asyncState = null)
    {
        var entry = _router.PickEntry();
        return new PooledTransaction(_router, entry, entry.GetDatabase(_db).CreateTransaction(asyncState), _facade);
    }

    ITransactionAsync IDatabaseAsync.CreateTransaction(object? asyncState) => CreateTransaction(asyncState);

    public bool IsConnected(RedisKey key, CommandFlags flags = CommandFlags.None) => _router.Pick(_db).IsConnected(key, flags);

    // The caller chose to block by calling Wait; forwarding it adds no blocking of our own.
#pragma warning disable SER308
    public void Wait(Task task) => _router.Pick(_db).Wait(task);

    public T Wait<T>(Task<T> task) => _router.Pick(_db).Wait(task);

    public void WaitAll(params Task[] tasks) => _router.Pick(_db).WaitAll(tasks);

    public bool TryWait(Task task) => _router.Pick(_db).TryWait(task);
#pragma warning restore SER308
}
