using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.IntegrationTests.Monitoring;
using RedisPoolKit.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>Connection strings where ASP.NET Core keeps them, and a password that never leaves the configuration.</summary>
[Collection(FaultCollection.Name)]
public sealed class SecretsAndBindingTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private const string Password = "Tr0ub4dor-Secret-5e1d";

    [Fact]
    public async Task A_pool_bound_from_a_section_without_Configuration_uses_ConnectionStrings_of_its_name()
    {
        var server = await StartServerAsync();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:cache"] = server.ConnectionString,
            ["Redis:Pools:cache:ServiceName"] = "tests",
            ["Redis:Pools:cache:MaxConnections"] = "3",
        });
        builder.Services.AddRedisPool("cache", builder.Configuration.GetSection("Redis:Pools:cache"));
        using var host = builder.Build();
        await host.StartAsync();

        var pool = host.Services.GetRequiredKeyedService<IRedisPool>("cache");
        await pool.GetDatabase().StringSetAsync("bound", "yes");
        Assert.Equal("yes", (string?)await pool.GetDatabase().StringGetAsync("bound"));
        Assert.Equal(3, pool.GetStatistics().MaxConnections);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_password_appears_in_no_log_line_exception_statistic_metric_tag_activity_or_facade_property()
    {
        var server = await StartServerAsync(new RedisServerOptions { Password = Password });
        var texts = new ConcurrentQueue<string>();
        using var meterListener = ListenToMeters(texts);
        using var activityListener = ListenToActivities(texts);
        var logs = new CapturingLoggerProvider();
        var options = new RedisPoolOptions
        {
            Name = "secrets",
            ServiceName = "tests",
            Configuration = server.ConnectionString,
            ConnectTimeout = TimeSpan.FromSeconds(3),
            Monitor = { PollInterval = TimeSpan.FromMilliseconds(100) },
            Breaker = { BreakDuration = TimeSpan.FromSeconds(1), MaxBreakDuration = TimeSpan.FromSeconds(2) },
        };

        await using (var pool = new RedisPool(options, new CapturingLoggerFactory(logs)))
        {
            await pool.ConnectAsync();
            await pool.GetDatabase().StringSetAsync("k", "v");
            await using (var lease = await pool.LeaseAsync())
            {
                await lease.Database.StringGetAsync("k");
            }

            await pool.Monitor!.PollOnceAsync();
            meterListener.RecordObservableInstruments();
            var facade = pool.Multiplexer;
            texts.Enqueue(facade.Configuration);
            Assert.Contains("password=*****", facade.Configuration, StringComparison.Ordinal);
            texts.Enqueue(facade.GetStatus());
            texts.Enqueue(facade.ToString()!);
            texts.Enqueue(facade.ClientName);
            texts.Enqueue(pool.GetStatistics().ToString());
            var health = await new RedisPoolHealthCheck(pool, TimeProvider.System).CheckHealthAsync(new HealthCheckContext());
            texts.Enqueue(health.Description ?? string.Empty);
            texts.Enqueue(string.Join(",", health.Data.Select(d => $"{d.Key}={d.Value}")));

            // Failures: the server killed under the pool, then a pool with the wrong password.
            await server.KillAsync();
            texts.Enqueue((await Assert.ThrowsAnyAsync<Exception>(() => pool.GetDatabase().StringGetAsync("k"))).ToString());
            texts.Enqueue((await Assert.ThrowsAnyAsync<Exception>(async () => await pool.LeaseAsync())).ToString());
            await server.RestartAsync();
        }

        await using (var wrong = new RedisPool(new RedisPoolOptions { Name = "wrong", ServiceName = "tests", Configuration = server.ConnectionString.Replace(Password, Password + "-x", StringComparison.Ordinal), ConnectTimeout = TimeSpan.FromSeconds(3) }, new CapturingLoggerFactory(logs)))
        {
            texts.Enqueue((await Assert.ThrowsAnyAsync<Exception>(() => wrong.ConnectAsync())).ToString());
            texts.Enqueue(wrong.Multiplexer.Configuration);
        }

        foreach (var line in logs.Lines)
        {
            texts.Enqueue(line.Text);
        }

        Assert.Contains(logs.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Debug);
        Assert.Contains(logs.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.Contains(texts, t => t.Contains("db.client.connection.pool.name=secrets", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.StartsWith("activity ", StringComparison.Ordinal));
        Assert.All(texts, t => Assert.DoesNotContain(Password, t, StringComparison.Ordinal));
    }

    private static MeterListener ListenToMeters(ConcurrentQueue<string> texts)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == RedisPoolInstrumentNames.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => texts.Enqueue(Format(i, tags)));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => texts.Enqueue(Format(i, tags)));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => texts.Enqueue(Format(i, tags)));
        listener.Start();
        return listener;

        static string Format(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var parts = new List<string> { instrument.Name };
            foreach (var tag in tags)
            {
                parts.Add($"{tag.Key}={tag.Value}");
            }

            return string.Join(" ", parts);
        }
    }

    private static ActivityListener ListenToActivities(ConcurrentQueue<string> texts)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == RedisPoolInstrumentNames.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => texts.Enqueue(
                $"activity {activity.OperationName} {activity.DisplayName} {activity.StatusDescription} "
                + string.Join(" ", activity.TagObjects.Select(t => $"{t.Key}={t.Value}"))
                + string.Join(" ", activity.Events.Select(e => e.Name + ":" + string.Join(",", e.Tags.Select(t => $"{t.Key}={t.Value}"))))),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }
}
