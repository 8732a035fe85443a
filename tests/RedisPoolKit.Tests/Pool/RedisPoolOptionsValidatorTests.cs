namespace RedisPoolKit.Tests.Pool;

public sealed class RedisPoolOptionsValidatorTests
{
    private static RedisPoolOptions Valid() => new() { Configuration = "127.0.0.1:6379", ServiceName = "order-service" };

    [Fact]
    public void Defaults_with_a_configuration_are_valid()
    {
        Assert.Empty(RedisPoolOptionsValidator.Validate(Valid()));
    }

    [Fact]
    public void Missing_configuration_is_named()
    {
        var errors = RedisPoolOptionsValidator.Validate(new RedisPoolOptions());

        Assert.Contains(errors, e => e.StartsWith("Configuration is required", StringComparison.Ordinal));
    }

    public static TheoryData<Action<RedisPoolOptions>, string> InvalidOptions => new()
    {
        { o => o.MaxConnections = 0, "MaxConnections ('0')" },
        { o => o.MaxConnections = -1, "MaxConnections ('-1')" },
        { o => o.MinMultiplexers = 0, "MinMultiplexers ('0')" },
        { o => { o.MinMultiplexers = 3; o.MaxMultiplexers = 2; }, "MinMultiplexers (3) must not exceed MaxMultiplexers (2)" },
        { o => { o.MinMultiplexers = 4; o.MaxMultiplexers = 4; o.MaxConnections = 3; }, "MinMultiplexers (4) needs 4 sockets, more than MaxConnections (3)" },
        { o => o.MaxInFlight = 0, "MaxInFlight ('0')" },
        { o => o.MaxQueueLength = -1, "MaxQueueLength ('-1')" },
        { o => o.QueueTimeout = TimeSpan.Zero, "QueueTimeout ('00:00:00')" },
        { o => o.ConnectTimeout = TimeSpan.FromSeconds(-1), "ConnectTimeout ('-00:00:01')" },
        { o => o.ShutdownGracePeriod = TimeSpan.FromSeconds(-1), "ShutdownGracePeriod ('-00:00:01')" },
        { o => o.ServiceName = "order service", "ServiceName ('order service')" },
        { o => o.InstanceId = "pod 1", "InstanceId ('pod 1')" },
        { o => o.Name = "my:pool", "Name ('my:pool')" },
        { o => o.Leases.MaxLeases = -1, "Leases.MaxLeases ('-1')" },
        { o => { o.Leases.MinIdle = 5; o.Leases.MaxLeases = 2; }, "Leases.MinIdle (5) must not exceed Leases.MaxLeases (2)" },
        { o => o.Leases.AcquireTimeout = TimeSpan.Zero, "Leases.AcquireTimeout" },
        { o => o.Leases.IdleTimeout = TimeSpan.Zero, "Leases.IdleTimeout" },
        { o => o.Leases.LeakDetectionThreshold = TimeSpan.Zero, "Leases.LeakDetectionThreshold" },
        { o => o.Leases.CommandTimeout = TimeSpan.Zero, "Leases.CommandTimeout" },
        { o => o.Breaker.BreakDuration = TimeSpan.Zero, "Breaker.BreakDuration" },
        { o => { o.Breaker.BreakDuration = TimeSpan.FromSeconds(10); o.Breaker.MaxBreakDuration = TimeSpan.FromSeconds(5); }, "Breaker.MaxBreakDuration (00:00:05) must be at least Breaker.BreakDuration (00:00:10)" },
        { o => o.Breaker.ConnectFailureThreshold = 0, "Breaker.ConnectFailureThreshold ('0')" },
        { o => o.Monitor.PollInterval = TimeSpan.Zero, "Monitor.PollInterval" },
        { o => o.QueueTimeout = TimeSpan.FromDays(50), "QueueTimeout ('50.00:00:00') must be at most 49.17:02:47.2940000" },
        { o => o.ConnectTimeout = TimeSpan.FromDays(25), "ConnectTimeout ('25.00:00:00') must be at most 24.20:31:23.6470000" },
        { o => o.ShutdownGracePeriod = TimeSpan.FromDays(60), "ShutdownGracePeriod ('60.00:00:00') must be at most 49.17:02:47.2940000" },
        { o => o.Leases.AcquireTimeout = TimeSpan.FromDays(60), "Leases.AcquireTimeout ('60.00:00:00') must be at most 49.17:02:47.2940000" },
        { o => o.Leases.LeakDetectionThreshold = TimeSpan.FromDays(60), "Leases.LeakDetectionThreshold ('60.00:00:00') must be at most 49.17:02:47.2940000" },
        { o => o.Leases.CommandTimeout = TimeSpan.FromDays(25), "Leases.CommandTimeout ('25.00:00:00') must be at most 24.20:31:23.6470000" },
        { o => o.Breaker.MaxBreakDuration = TimeSpan.FromDays(40), "Breaker.MaxBreakDuration ('40.00:00:00') must be at most 39.18:26:13.8352000" },
        { o => o.Monitor.PollInterval = TimeSpan.FromDays(60), "Monitor.PollInterval ('60.00:00:00') must be at most 49.17:02:47.2940000" },
        { o => o.Monitor.WarningUtilization = 1.5, "Monitor.WarningUtilization ('1.5')" },
        { o => { o.Monitor.WarningUtilization = 0.9; o.Monitor.CriticalUtilization = 0.8; }, "Monitor.WarningUtilization (0.9) must be less than Monitor.CriticalUtilization (0.8)" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Each_invalid_option_is_named_with_its_value(Action<RedisPoolOptions> breakIt, string expected)
    {
        var options = Valid();
        breakIt(options);

        var errors = RedisPoolOptionsValidator.Validate(options);

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Timer_durations_at_their_upper_bounds_are_valid_and_can_be_armed()
    {
        var options = Valid();
        options.QueueTimeout = RedisPoolOptionsValidator.MaxTimerDuration;
        options.ConnectTimeout = RedisPoolOptionsValidator.MaxConnectTimeout;
        options.ShutdownGracePeriod = RedisPoolOptionsValidator.MaxTimerDuration;
        options.Leases.AcquireTimeout = RedisPoolOptionsValidator.MaxTimerDuration;
        options.Leases.LeakDetectionThreshold = RedisPoolOptionsValidator.MaxTimerDuration;
        options.Breaker.MaxBreakDuration = RedisPoolOptionsValidator.MaxBreakDuration;
        options.Monitor.PollInterval = RedisPoolOptionsValidator.MaxTimerDuration;

        Assert.Empty(RedisPoolOptionsValidator.Validate(options));

        var longest = new[]
        {
            RedisPoolOptionsValidator.MaxTimerDuration,
            RedisPoolOptionsValidator.MaxBreakDuration * 1.25,
            RedisPoolOptionsValidator.MaxConnectTimeout + TimeSpan.FromSeconds(1),
        };
        foreach (var duration in longest)
        {
            using var timer = TimeProvider.System.CreateTimer(_ => { }, null, duration, Timeout.InfiniteTimeSpan);
            using var cts = new CancellationTokenSource(duration, TimeProvider.System);
            var never = new TaskCompletionSource();
            var wait = never.Task.WaitAsync(duration, TimeProvider.System, cts.Token);
            never.SetResult();
            await wait;
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => TimeProvider.System.CreateTimer(_ => { }, null, RedisPoolOptionsValidator.MaxTimerDuration + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public void The_pool_constructor_throws_one_exception_listing_every_invalid_option()
    {
        var options = Valid();
        options.MaxConnections = -1;
        options.QueueTimeout = TimeSpan.Zero;
        options.Leases.MaxWaiters = -2;

        var ex = Assert.Throws<ArgumentException>(() => new RedisPool(options));

        Assert.Contains("MaxConnections ('-1')", ex.Message, StringComparison.Ordinal);
        Assert.Contains("QueueTimeout ('00:00:00')", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Leases.MaxWaiters ('-2')", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unparsable_configuration_is_reported_without_echoing_it()
    {
        var options = Valid();
        options.Configuration = "127.0.0.1:6379,password=s3cret-pa55,connectTimeout=notanumber";

        var errors = RedisPoolOptionsValidator.Validate(options);

        Assert.Contains(errors, e => e.StartsWith("Configuration could not be parsed", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("s3cret-pa55", StringComparison.Ordinal));
    }

    [Fact]
    public void A_valid_configuration_is_handed_back_parsed_for_the_pool_to_share()
    {
        var options = Valid();
        options.Configuration = "127.0.0.1:6379,127.0.0.1:6380,ssl=true";

        var configuration = RedisPoolOptionsValidator.ThrowIfInvalid(options);

        Assert.Equal(["127.0.0.1:6379", "127.0.0.1:6380"], configuration.EndPoints.Select(e => e.ToString()));
        Assert.True(configuration.Ssl);
    }

    [Fact]
    public void An_unparsable_configuration_is_not_handed_back()
    {
        var options = Valid();
        options.Configuration = "127.0.0.1:6379,connectTimeout=notanumber";

        var errors = RedisPoolOptionsValidator.Validate(options, out var configuration);

        Assert.NotEmpty(errors);
        Assert.Null(configuration);
    }

    [Fact]
    public void The_pool_constructor_does_no_io()
    {
        var options = Valid();
        options.Configuration = "127.0.0.1:1";

        using var pool = new RedisPool(options);

        Assert.Equal(0, pool.GetStatistics().Sockets);
    }
}
