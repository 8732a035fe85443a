using System.Globalization;
using Microsoft.Extensions.Logging;

namespace RedisPoolKit;

/// <summary>
/// Logs rejections at most once per window: a shedding pool rejects thousands of callers a second, and one line
/// each would drown the log it is meant to make readable. The first rejection of a quiet period logs at once.
/// </summary>
internal sealed class RejectionLog
{
    internal static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    private readonly string _poolName;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _lock = new();
    private long _windowStart;
    private long _suppressed;

    public RejectionLog(string poolName, ILogger logger, TimeProvider timeProvider)
    {
        _poolName = poolName;
        _logger = logger;
        _timeProvider = timeProvider;
    }

    public void Record(RedisPoolExhaustedReason reason, string message)
    {
        if (!_logger.IsEnabled(LogLevel.Warning))
        {
            return;
        }

        long count;
        double seconds;
        lock (_lock)
        {
            var now = _timeProvider.GetTimestamp();
            if (_windowStart != 0 && _timeProvider.GetElapsedTime(_windowStart, now) < Window)
            {
                _suppressed++;
                return;
            }

            count = _suppressed + 1;
            seconds = _windowStart == 0 ? 0 : _timeProvider.GetElapsedTime(_windowStart, now).TotalSeconds;
            _windowStart = now;
            _suppressed = 0;
        }

        Log.Rejections(_logger, _poolName, count, seconds, reason.ToString(), message);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{_poolName}: {_suppressed} suppressed");
}
