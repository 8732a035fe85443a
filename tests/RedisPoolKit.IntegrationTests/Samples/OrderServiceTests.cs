using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;

namespace RedisPoolKit.IntegrationTests.Samples;

[Collection(FaultCollection.Name)]
public sealed class OrderServiceTests
{
    [Fact]
    public async Task Every_endpoint_answers_beside_a_real_redis_and_metrics_show_the_pool()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var app = new WebApplicationFactory<Program>().WithWebHostBuilder(host => host
            .UseSetting("Redis:Pools:orders:Configuration", redis.ConnectionString)
            .UseSetting("Redis:Pools:orders:InstanceId", "test"));
        app.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        app.StartServer();
        using var http = app.CreateClient();
        Assert.Equal("127.0.0.1", http.BaseAddress!.Host);

        var first = await http.GetFromJsonAsync<JsonElement>("/profile/42");
        var second = await http.GetFromJsonAsync<JsonElement>("/profile/42");
        Assert.Equal("database", first.GetProperty("source").GetString());
        Assert.Equal("cache", second.GetProperty("source").GetString());
        Assert.Equal(42, second.GetProperty("profile").GetProperty("id").GetInt32());

        (await http.PostAsJsonAsync("/cart/s1", new { sku = "A1", quantity = 2 })).EnsureSuccessStatusCode();
        var cart = await (await http.PostAsJsonAsync("/cart/s1", new { sku = "A1", quantity = 3 })).Content.ReadFromJsonAsync<Dictionary<string, long>>();
        Assert.Equal(5, cart!["A1"]);

        var notify = await http.PostAsJsonAsync("/notify", new { message = "order shipped" });
        Assert.Equal(HttpStatusCode.Accepted, notify.StatusCode);
        var id = (await notify.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        var health = await http.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("application/json", health.Content.Headers.ContentType?.MediaType);
        var report = await health.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        var pool = report.GetProperty("entries").GetProperty("redispool-orders");
        Assert.Equal("Healthy", pool.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(pool.GetProperty("description").GetString()));
        var data = pool.GetProperty("data");
        Assert.Equal("orders", data.GetProperty("pool").GetString());
        Assert.Equal("Closed", data.GetProperty("circuit_state").GetString());
        Assert.True(data.GetProperty("sockets").GetInt32() >= 1, data.ToString());
        Assert.True(data.GetProperty("sockets").GetInt32() <= data.GetProperty("max_connections").GetInt32(), data.ToString());

        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("db_client_connection_count", metrics, StringComparison.Ordinal);
        Assert.Contains("db_client_connection_max", metrics, StringComparison.Ordinal);

        await Eventually.TrueAsync(async () =>
            (await http.GetFromJsonAsync<JsonElement>("/notifications/processed")).GetProperty("lastId").GetString() == id,
            TimeSpan.FromSeconds(10), "the notification worker consumes the notification through its lease");
    }
}
