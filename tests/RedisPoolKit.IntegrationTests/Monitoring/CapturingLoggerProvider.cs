using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace RedisPoolKit.IntegrationTests.Monitoring;

/// <summary>Keeps every formatted log line (with its exception text) at every level.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider, ILogger
{
    public ConcurrentQueue<(EventId EventId, LogLevel Level, string Text)> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var structured = state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? string.Join(" ", pairs.Select(p => $"{p.Key}={p.Value}"))
            : string.Empty;
        Lines.Enqueue((eventId, logLevel, $"{formatter(state, exception)} | {structured} | {exception}"));
    }

    public void Dispose() { }
}
