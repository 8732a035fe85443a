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

/// <summary>A meter factory whose meter is scoped to one test, so a collector sees only that test's pools.</summary>
internal sealed class ScopedMeterFactory : System.Diagnostics.Metrics.IMeterFactory
{
    private System.Diagnostics.Metrics.Meter? _meter;

    public System.Diagnostics.Metrics.Meter Create(System.Diagnostics.Metrics.MeterOptions options) =>
        _meter ??= new System.Diagnostics.Metrics.Meter(new System.Diagnostics.Metrics.MeterOptions(options.Name) { Version = options.Version, Scope = this });

    public void Dispose() => _meter?.Dispose();
}
