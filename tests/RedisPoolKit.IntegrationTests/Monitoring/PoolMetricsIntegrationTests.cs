using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using static RedisPoolKit.RedisPoolInstrumentNames;

namespace RedisPoolKit.IntegrationTests.Monitoring;

[Collection(FaultCollection.Name)]
public sealed class PoolMetricsIntegrationTests
{
    private sealed class ScopedMeterFactory : IMeterFactory
    {
        private Meter? _meter;

        public Meter Create(MeterOptions options) =>
            _meter ??= new Meter(new MeterOptions(options.Name) { Version = options.Version, Scope = this });

        public void Dispose() => _meter?.Dispose();
    }

    [Fact]
    public async Task A_connected_pool_reports_its_sockets_against_its_budget()
    {
        await using var server = await RedisServer.StartAsync();
        using var meterFactory = new ScopedMeterFactory();
        var options = new RedisPoolOptions { Name = "metrics-it", Configuration = server.ConnectionString, MaxConnections = 5 };
        await using var pool = new RedisPool(options, loggerFactory: null, TimeProvider.System, meterFactory);
        using var count = new MetricCollector<long>(meterFactory, MeterName, ConnectionCount);
        using var max = new MetricCollector<long>(meterFactory, MeterName, ConnectionMax);
        using var multiplexers = new MetricCollector<long>(meterFactory, MeterName, Multiplexers);

        await pool.ConnectAsync();
        await pool.GetDatabase().StringSetAsync("metrics-it", "1");
        count.RecordObservableInstruments();
        max.RecordObservableInstruments();
        multiplexers.RecordObservableInstruments();

        var used = Assert.Single(count.GetMeasurementSnapshot(), m => (string?)m.Tags[StateTag] == StateUsed);
        Assert.Equal(pool.GetStatistics().Sockets, used.Value);
        Assert.True(used.Value >= 1);
        Assert.Equal("metrics-it", used.Tags[PoolNameTag]);
        Assert.Equal(5, Assert.Single(max.GetMeasurementSnapshot()).Value);
        Assert.Equal(1, Assert.Single(multiplexers.GetMeasurementSnapshot()).Value);
    }

    [Fact]
    public async Task Failed_commands_are_counted_by_error_type_and_successes_are_not()
    {
        await using var server = await RedisServer.StartAsync();
        using var meterFactory = new ScopedMeterFactory();
        var options = new RedisPoolOptions { Name = "failures-it", Configuration = server.ConnectionString };
        await using var pool = new RedisPool(options, loggerFactory: null, TimeProvider.System, meterFactory);
        using var failed = new MetricCollector<long>(meterFactory, MeterName, CommandsFailed);
        var db = pool.GetDatabase();

        await db.StringSetAsync("failures-it", "not a number");
        Assert.Equal("not a number", (string?)db.StringGet("failures-it"));
        await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(() => db.StringIncrementAsync("failures-it"));
        Assert.Throws<StackExchange.Redis.RedisServerException>(() => db.StringIncrement("failures-it"));

        var measurements = failed.GetMeasurementSnapshot();
        Assert.Equal(2, measurements.Count);
        Assert.All(measurements, m =>
        {
            Assert.Equal(1, m.Value);
            Assert.Equal("StackExchange.Redis.RedisServerException", m.Tags[ErrorTypeTag]);
            Assert.Equal("failures-it", m.Tags[PoolNameTag]);
        });
        Assert.Equal(0, pool.GetStatistics().InFlight);
    }
}
