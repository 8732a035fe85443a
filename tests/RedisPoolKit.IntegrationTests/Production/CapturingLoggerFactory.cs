using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Monitoring;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>A logger factory whose every logger writes to one <see cref="CapturingLoggerProvider"/>.</summary>
internal sealed class CapturingLoggerFactory(CapturingLoggerProvider provider) : ILoggerFactory
{
    public CapturingLoggerProvider Provider => provider;

    public ILogger CreateLogger(string categoryName) => provider;

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose() { }
}
