using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.DependencyInjection;

public class RedisPoolHostedServiceTests
{
    private static readonly TimeSpan s_testTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Host_start_connects_the_pool_before_hosted_services_start_and_stop_disposes_it_after_they_stop()
    {
        var pool = new FakePool("cache");
        var order = new List<string>();
        pool.OnConnect = _ => { order.Add("connect"); return Task.CompletedTask; };
        pool.OnDispose = () => order.Add("dispose");
        using var host = BuildHost(pool, requireConnection: true, services => services.AddHostedService(_ => new RecordingService(order)));

        await host.StartAsync().WaitAsync(s_testTimeout);
        await host.StopAsync().WaitAsync(s_testTimeout);

        Assert.Equal(["connect", "service start", "service stop", "dispose"], order);
    }

    [Fact]
    public async Task Connect_failure_fails_host_start_with_the_pools_exception_when_connection_is_required()
    {
        var pool = new FakePool("cache");
        var failure = new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "no server at 127.0.0.1:6390", null, CommandStatus.Unknown);
        pool.OnConnect = _ => Task.FromException(failure);
        var logs = new FakeLogCollector();
        using var host = BuildHost(pool, requireConnection: true, logs: logs);

        var ex = await Assert.ThrowsAsync<RedisConnectionException>(() => host.StartAsync().WaitAsync(s_testTimeout));

        Assert.Same(failure, ex);
        Assert.Contains(logs.GetSnapshot(), r => r.Id.Id == 402 && r.Level == LogLevel.Error && r.Message.Contains("RequireConnectionOnStart", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_failure_starts_the_host_degraded_with_a_warning_when_connection_is_not_required()
    {
        var pool = new FakePool("cache");
        pool.OnConnect = _ => Task.FromException(new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "no server", null, CommandStatus.Unknown));
        var logs = new FakeLogCollector();
        using var host = BuildHost(pool, requireConnection: false, logs: logs);

        await host.StartAsync().WaitAsync(s_testTimeout);

        var warning = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 401);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("127.0.0.1:6390", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", warning.Message, StringComparison.Ordinal);
        await host.StopAsync().WaitAsync(s_testTimeout);
        Assert.Equal(1, pool.DisposeCalls);
    }

    [Fact]
    public async Task Connect_that_overruns_ConnectTimeout_fails_host_start_naming_ConnectTimeout()
    {
        var time = new FakeTimeProvider();
        var pool = new FakePool("cache");
        var connecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pool.OnConnect = token =>
        {
            connecting.TrySetResult();
            return new TaskCompletionSource().Task.WaitAsync(token);
        };
        using var host = BuildHost(pool, requireConnection: true, services => services.AddSingleton<TimeProvider>(time));

        var start = host.StartAsync();
        await connecting.Task.WaitAsync(s_testTimeout);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(start.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(2));
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => start.WaitAsync(s_testTimeout));

        Assert.Contains("'ConnectTimeout' (00:00:03)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:6390", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelled_host_start_is_not_reported_as_a_connect_failure()
    {
        var pool = new FakePool("cache");
        pool.OnConnect = token => new TaskCompletionSource().Task.WaitAsync(token);
        using var host = BuildHost(pool, requireConnection: false);
        using var cts = new CancellationTokenSource();

        var start = host.StartAsync(cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => start.WaitAsync(s_testTimeout));
    }

    private static IHost BuildHost(FakePool pool, bool requireConnection, Action<IServiceCollection>? configure = null, FakeLogCollector? logs = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging(logging => logging.AddProvider(new FakeLoggerProvider(logs ?? new FakeLogCollector())));
        builder.Services.AddRedisPool(pool.Name, o =>
        {
            o.Configuration = "127.0.0.1:6390,password=secret";
            o.ConnectTimeout = TimeSpan.FromSeconds(3);
            o.RequireConnectionOnStart = requireConnection;
        });

        // Last registration wins: the hosted service resolves this fake instead of a real pool.
        builder.Services.AddKeyedSingleton<IRedisPool>(pool.Name, pool);
        configure?.Invoke(builder.Services);
        return builder.Build();
    }

    private sealed class RecordingService(List<string> order) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            order.Add("service start");
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            order.Add("service stop");
            return Task.CompletedTask;
        }
    }

    private sealed class FakePool(string name) : IRedisPool
    {
        public Func<CancellationToken, Task> OnConnect { get; set; } = _ => Task.CompletedTask;

        public Action OnDispose { get; set; } = () => { };

        public int DisposeCalls { get; private set; }

        public string Name { get; } = name;

        public IConnectionMultiplexer Multiplexer => throw new NotSupportedException();

        public RedisPoolCircuitState CircuitState => RedisPoolCircuitState.Closed;

        public event EventHandler<RedisPoolCircuitStateChangedEventArgs>? CircuitStateChanged { add { } remove { } }

        public event EventHandler<RedisServerUtilizationEventArgs>? ServerUtilizationChanged { add { } remove { } }

        public Task ConnectAsync(CancellationToken cancellationToken = default) => OnConnect(cancellationToken);

        public IDatabase GetDatabase(int db = -1) => throw new NotSupportedException();

        public ValueTask<RedisLease> LeaseAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<RedisLease> LeaseAsync(RedisKey key, CancellationToken cancellationToken) => throw new NotSupportedException();

        public RedisPoolStatistics GetStatistics() => throw new NotSupportedException();

        public ValueTask DisposeAsync()
        {
            DisposeCalls++;
            OnDispose();
            return ValueTask.CompletedTask;
        }

        public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
