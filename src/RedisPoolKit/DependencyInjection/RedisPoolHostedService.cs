using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Ties one pool to the host's lifetime. It connects in <see cref="StartingAsync"/>, before any hosted
/// service's <c>StartAsync</c>, so consumers start against a warm pool; it disposes the pool in
/// <see cref="StoppedAsync"/>, after every hosted service has stopped, so their last commands still run.
/// </summary>
internal sealed class RedisPoolHostedService(IServiceProvider services, string poolName) : IHostedLifecycleService
{
    // The pool bounds ConnectAsync by ConnectTimeout itself, but StackExchange.Redis checks its timeouts on a
    // 1 s heartbeat; this backstop only fires if the pool overran, so the pool's own error wins.
    private static readonly TimeSpan s_connectBackstopSlack = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _timeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System;
    private readonly ILogger _logger = (ILogger?)services.GetService<ILoggerFactory>()?.CreateLogger<RedisPoolHostedService>() ?? NullLogger.Instance;
    private IRedisPool? _pool;
    private RedisPoolOptions? _options;

    public string PoolName { get; } = poolName;

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var options = _options = services.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get(PoolName);
        var pool = _pool = services.GetRequiredKeyedService<IRedisPool>(PoolName);
        var endPoints = EndPoints(options);
        var started = _timeProvider.GetTimestamp();

        using var backstop = new CancellationTokenSource(options.ConnectTimeout + s_connectBackstopSlack, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, backstop.Token);
        Exception failure;
        try
        {
            await pool.ConnectAsync(linked.Token).ConfigureAwait(false);
            var connectedMs = _timeProvider.GetElapsedTime(started).TotalMilliseconds;
            Log.HostStartConnected(_logger, PoolName, endPoints, connectedMs);
            return;
        }
        catch (OperationCanceledException) when (backstop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            failure = new TimeoutException(
                $"Pool '{PoolName}' did not connect to {endPoints} within 'ConnectTimeout' ({RedisPoolOptionsValidator.Format(options.ConnectTimeout)}) at host start.");
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            failure = ex;
        }

        var elapsedMs = _timeProvider.GetElapsedTime(started).TotalMilliseconds;
        if (options.RequireConnectionOnStart)
        {
            Log.HostStartFailed(_logger, failure, PoolName, endPoints, elapsedMs);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }

        Log.HostStartDegraded(_logger, failure, PoolName, endPoints, elapsedMs);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        // A pool the start never reached was never connected: the container disposes it if it exists.
        if (_pool is not { } pool || _options is not { } options)
        {
            return;
        }

        var started = _timeProvider.GetTimestamp();
        try
        {
            // The pool bounds its own disposal by ShutdownGracePeriod; the host's shutdown timeout may be shorter.
            await pool.DisposeAsync().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
            var stoppedMs = _timeProvider.GetElapsedTime(started).TotalMilliseconds;
            Log.HostStopped(_logger, PoolName, stoppedMs, options.ShutdownGracePeriod);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var cutShortMs = _timeProvider.GetElapsedTime(started).TotalMilliseconds;
            Log.HostStopCutShort(_logger, PoolName, cutShortMs, options.ShutdownGracePeriod);
        }
    }

    private static string EndPoints(RedisPoolOptions options)
    {
        try
        {
            return string.Join(",", ConfigurationOptions.Parse(options.Configuration!).EndPoints.Select(RedisConnectionFactory.Format));
        }
        catch (ArgumentException)
        {
            return "(unparsable configuration)";
        }
    }
}
