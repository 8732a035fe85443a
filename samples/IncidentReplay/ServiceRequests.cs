using StackExchange.Redis;

namespace IncidentReplay;

/// <summary>
/// What one order-service and one cart-service request send to Redis. Every phase runs these same commands; the
/// phases differ only in how they get the <see cref="IDatabase"/>, which is what the replay compares.
/// </summary>
internal static class ServiceRequests
{
    /// <summary>A cached customer profile: read it, and write it back for 30 s when it is missing.</summary>
    public static async Task OrderAsync(IDatabase db, long sequence)
    {
        var key = $"profile:{sequence % 500}";
        if ((await db.StringGetAsync(key).ConfigureAwait(false)).IsNull)
        {
            await db.StringSetAsync(key, $"{{\"id\":{sequence % 500},\"name\":\"customer\"}}", TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
    }

    /// <summary>A cart update: one field written, then the whole cart read.</summary>
    public static async Task CartAsync(IDatabase db, int instance, long sequence)
    {
        var key = $"cart:{instance}:{sequence % 200}";
        await db.HashSetAsync(key, $"sku-{sequence % 17}", sequence).ConfigureAwait(false);
        await db.HashGetAllAsync(key).ConfigureAwait(false);
    }
}
