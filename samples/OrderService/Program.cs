using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Mvc;
using OpenTelemetry.Metrics;
using OrderService;
using RedisPoolKit;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddHealthChecks();
builder.Services.AddRedisPool(Pools.Orders, builder.Configuration.GetSection($"Redis:Pools:{Pools.Orders}"))
    .AddHealthCheck();
builder.Services.AddSingleton<NotificationStats>();
builder.Services.AddHostedService<NotificationWorker>();
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
    .AddMeter("RedisPoolKit")
    .AddPrometheusExporter());

var app = builder.Build();

app.MapGet("/profile/{id:int}", async (int id, [FromKeyedServices(Pools.Orders)] IRedisPool pool) =>
{
    // Cache-aside: read the cache, on a miss load from the system of record and fill the cache for 60 s.
    var db = pool.GetDatabase();
    var key = $"profile:{id}";
    var cached = await db.StringGetAsync(key);
    if (!cached.IsNull)
    {
        return Results.Ok(new ProfileResponse(JsonSerializer.Deserialize<Profile>(cached.ToString())!, "cache"));
    }

    var profile = new Profile(id, $"customer-{id}", $"customer-{id}@example.com");
    await db.StringSetAsync(key, JsonSerializer.Serialize(profile), TimeSpan.FromSeconds(60));
    return Results.Ok(new ProfileResponse(profile, "database"));
});

app.MapPost("/cart/{session}", async (string session, CartItem item, [FromKeyedServices(Pools.Orders)] IRedisPool pool) =>
{
    var db = pool.GetDatabase();
    var key = $"cart:{session}";
    await db.HashIncrementAsync(key, item.Sku, item.Quantity);
    await db.KeyExpireAsync(key, TimeSpan.FromDays(1));
    var entries = await db.HashGetAllAsync(key);
    return Results.Ok(entries.ToDictionary(e => e.Name.ToString(), e => (long)e.Value));
});

app.MapPost("/notify", async (NotificationRequest request, [FromKeyedServices(Pools.Orders)] IRedisPool pool) =>
{
    var notification = new Notification(Guid.NewGuid().ToString("N"), request.Message);
    await pool.GetDatabase().ListRightPushAsync(NotificationWorker.QueueKey, JsonSerializer.Serialize(notification));
    return Results.Accepted(value: notification);
});

app.MapGet("/notifications/processed", (NotificationStats stats) => Results.Ok(new { processed = stats.Processed, lastId = stats.LastId }));

app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = HealthResponse.WriteAsync });
app.MapPrometheusScrapingEndpoint("/metrics");

app.Run();

/// <summary>Public so integration tests can host the app with WebApplicationFactory.</summary>
public partial class Program;

namespace OrderService
{
    internal static class Pools
    {
        public const string Orders = "orders";
    }

    internal sealed record Profile(int Id, string Name, string Email);

    internal sealed record ProfileResponse(Profile Profile, string Source);

    internal sealed record CartItem(string Sku, int Quantity);

    internal sealed record NotificationRequest(string Message);

    internal sealed record Notification(string Id, string Message);
}
