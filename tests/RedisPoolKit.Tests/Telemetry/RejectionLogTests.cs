using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace RedisPoolKit.Tests.Telemetry;

public sealed class RejectionLogTests
{
    [Fact]
    public void Logs_the_first_rejection_then_at_most_one_line_per_window_with_the_count()
    {
        var time = new FakeTimeProvider();
        var logger = new FakeLogger();
        var log = new RejectionLog("cache", logger, time);

        log.Record(RedisPoolExhaustedReason.QueueFull, "full 1");
        log.Record(RedisPoolExhaustedReason.QueueFull, "full 2");
        log.Record(RedisPoolExhaustedReason.QueueFull, "full 3");
        Assert.Equal(1, logger.Collector.Count);

        time.Advance(RejectionLog.Window);
        log.Record(RedisPoolExhaustedReason.QueueTimeout, "timed out");

        Assert.Equal(2, logger.Collector.Count);
        var last = logger.Collector.LatestRecord;
        Assert.Equal(8, last.Id.Id);
        Assert.Contains("rejected 3 callers", last.Message, StringComparison.Ordinal);
        Assert.Contains("QueueTimeout", last.Message, StringComparison.Ordinal);
    }
}
