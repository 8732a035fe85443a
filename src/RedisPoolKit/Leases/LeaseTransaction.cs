using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// A transaction made on a lease's database: its commands queue as StackExchange.Redis's do, and Execute first checks
/// that the lease is still held and its socket not retired (a Sentinel failover), so nothing is sent otherwise.
/// </summary>
[GenerateForwarding(typeof(ITransaction), nameof(Inner))]
internal sealed partial class LeaseTransaction : ITransaction
{
    private readonly ILeaseDatabase _database;

    public LeaseTransaction(ILeaseDatabase database, ITransaction inner)
    {
        _database = database;
        Inner = inner;
    }

    private ITransaction Inner { get; }

    // StackExchange.Redis sends a transaction executed this way fire-and-forget.
    public void Execute() => Execute(CommandFlags.FireAndForget);

    public bool Execute(CommandFlags flags)
    {
        _database.ThrowIfUnusable();
        return Inner.Execute(flags);
    }

    public Task<bool> ExecuteAsync(CommandFlags flags = CommandFlags.None)
    {
        _database.ThrowIfUnusable();
        return Inner.ExecuteAsync(flags);
    }
}

/// <summary>A batch made on a lease's database: Execute checks the lease as <see cref="LeaseTransaction"/> does.</summary>
[GenerateForwarding(typeof(IBatch), nameof(Inner))]
internal sealed partial class LeaseBatch : IBatch
{
    private readonly ILeaseDatabase _database;

    public LeaseBatch(ILeaseDatabase database, IBatch inner)
    {
        _database = database;
        Inner = inner;
    }

    private IBatch Inner { get; }

    public void Execute()
    {
        _database.ThrowIfUnusable();
        Inner.Execute();
    }
}
