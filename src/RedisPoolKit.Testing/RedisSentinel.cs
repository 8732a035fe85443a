using System.Globalization;

namespace RedisPoolKit.Testing;

/// <summary>One sentinel of a <see cref="RedisSentinelSet"/>: a <c>redis-sentinel</c> process with its own admin socket.</summary>
public sealed class RedisSentinel : RedisNode
{
    private RedisSentinel(RedisServer server, RespAdminConnection admin, string? password)
        : base(server, admin, password)
    {
    }

    private protected override string Kind => "sentinel";

    /// <summary>The master's port as this sentinel reports it now (<c>SENTINEL GET-MASTER-ADDR-BY-NAME</c>).</summary>
    public async Task<int> GetMasterPortAsync(string serviceName)
    {
        var address = await ExecuteAsync("SENTINEL", "GET-MASTER-ADDR-BY-NAME", serviceName).ConfigureAwait(false);
        return int.Parse((string?)address[1] ?? "0", NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>The fields of <c>SENTINEL MASTER serviceName</c> (flags, num-slaves, num-other-sentinels, ...).</summary>
    public async Task<IReadOnlyDictionary<string, string>> MasterStateAsync(string serviceName) =>
        Pairs(await ExecuteAsync("SENTINEL", "MASTER", serviceName).ConfigureAwait(false));

    internal static async Task<RedisSentinel> StartAsync(RedisServerOptions options, CancellationToken cancellationToken)
    {
        var (server, admin) = await LaunchAsync(options, cancellationToken).ConfigureAwait(false);
        return new RedisSentinel(server, admin, options.Password);
    }

    /// <summary>The replicas this sentinel knows for the service, each as the fields of <c>SENTINEL REPLICAS</c>.</summary>
    internal async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> ReplicasAsync(string serviceName)
    {
        var replicas = (StackExchange.Redis.RedisResult[]?)await ExecuteAsync("SENTINEL", "REPLICAS", serviceName).ConfigureAwait(false) ?? [];
        return [.. replicas.Select(Pairs)];
    }

    private static Dictionary<string, string> Pairs(StackExchange.Redis.RedisResult flat)
    {
        var items = (StackExchange.Redis.RedisResult[]?)flat ?? [];
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < items.Length; i += 2)
        {
            result[(string?)items[i] ?? string.Empty] = (string?)items[i + 1] ?? string.Empty;
        }

        return result;
    }
}
