using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit.Testing;

/// <summary>
/// A slot on its way from one master to another, begun by <see cref="RedisCluster.BeginSlotMigrationAsync"/>: until
/// <see cref="CompleteAsync"/> the source answers <c>-ASK</c> for the slot's keys it no longer holds and the target
/// accepts them only after <c>ASKING</c>, as in a live resharding.
/// </summary>
public sealed class RedisSlotMigration
{
    private const int KeysPerMigrate = 100;
    private static readonly TimeSpan AgreementTimeout = TimeSpan.FromSeconds(15);

    private readonly RedisCluster _cluster;

    internal RedisSlotMigration(RedisCluster cluster, int slot, RedisClusterNode source, RedisClusterNode target)
    {
        _cluster = cluster;
        Slot = slot;
        Source = source;
        Target = target;
    }

    /// <summary>The slot being moved.</summary>
    public int Slot { get; }

    /// <summary>The master that served the slot when the migration began.</summary>
    public RedisClusterNode Source { get; }

    /// <summary>The master that will serve it.</summary>
    public RedisClusterNode Target { get; }

    /// <summary>
    /// Moves the slot's remaining keys with <c>MIGRATE</c>, assigns the slot to <see cref="Target"/> on every master
    /// (<c>CLUSTER SETSLOT slot NODE</c>: the target first, then the source, then the others), and waits until every
    /// running node, replicas included, names the target as the slot's owner. From then the source answers <c>-MOVED</c>.
    /// </summary>
    /// <exception cref="TimeoutException">Some node still names another owner after 15 seconds.</exception>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        var slot = Slot.ToString(CultureInfo.InvariantCulture);
        var port = Target.Port.ToString(CultureInfo.InvariantCulture);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var keys = (RedisResult[]?)await Source.ExecuteAsync("CLUSTER", "GETKEYSINSLOT", slot, KeysPerMigrate.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false) ?? [];
            if (keys.Length == 0)
            {
                break;
            }

            await Source.ExecuteAsync("MIGRATE", ["127.0.0.1", port, string.Empty, "0", "5000", "KEYS", .. keys.Select(k => (string)k!)]).ConfigureAwait(false);
        }

        var masters = await _cluster.GetMastersAsync().ConfigureAwait(false);
        foreach (var master in masters.OrderBy(m => m == Target ? 0 : m == Source ? 1 : 2))
        {
            await master.ExecuteAsync("CLUSTER", "SETSLOT", slot, "NODE", Target.NodeId).ConfigureAwait(false);
        }

        await TopologyWait.UntilAsync(
            DisagreeingNodeAsync,
            AgreementTimeout,
            last => new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"Slot {Slot} was assigned to {Target}, but not every node agreed within {AgreementTimeout.TotalSeconds:0} s; last check: {last}")),
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"slot {Slot}: {Source} -> {Target}");

    private async Task<string?> DisagreeingNodeAsync()
    {
        foreach (var node in _cluster.Nodes.Where(n => n.IsRunning))
        {
            var view = await node.ClusterNodesAsync().ConfigureAwait(false);
            var owner = view.FirstOrDefault(e => e.IsMaster && e.Owns(Slot));
            if (owner?.Id != Target.NodeId)
            {
                return $"{node} names {owner?.Id ?? "no node"} as the owner";
            }
        }

        return null;
    }
}
