using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using static RedisPoolKit.Tests.Leases.LeaseTestKit;

namespace RedisPoolKit.Tests.Leases;

public class LeasePoolFaultTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeConnector _connector = new();

    [Fact]
    public async Task Forced_disposal_stops_the_leak_timers_of_leases_never_returned()
    {
        var logger = new FakeLogger();
        var pool = CreatePool(_time, _connector, o => o.LeakDetectionThreshold = TimeSpan.FromMinutes(1), logger, shutdownGracePeriod: TimeSpan.FromSeconds(5));
        var neverReturned = await pool.AcquireAsync();
        var disposing = pool.DisposeAsync().AsTask();
        _time.Advance(TimeSpan.FromSeconds(6));
        await disposing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(neverReturned.Socket().IsDisposed, "The held socket is closed after ShutdownGracePeriod.");

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 200);
        neverReturned.Dispose();
    }
}
