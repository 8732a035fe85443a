using System.Globalization;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// Validates <see cref="RedisPoolOptions"/> once, at construction or host start, and reports every
/// invalid option with its value. Nothing is silently corrected.
/// </summary>
internal static class RedisPoolOptionsValidator
{
    /// <summary>The longest wait a .NET timer, <c>Task.WaitAsync</c> or <c>CancelAfter</c> accepts (0xFFFFFFFE ms, about 49.7 days); longer throws when armed.</summary>
    internal static readonly TimeSpan MaxTimerDuration = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    /// <summary>StackExchange.Redis takes ConnectTimeout in int milliseconds (about 24.8 days); this also leaves room for the slack added to its timers.</summary>
    internal static readonly TimeSpan MaxConnectTimeout = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>Each break is jittered up to a quarter longer and armed on a timer.</summary>
    internal static readonly TimeSpan MaxBreakDuration = MaxTimerDuration / 1.25;

    private const string TimerLimit = "the longest a .NET timer can wait";

    public static List<string> Validate(RedisPoolOptions options) => Validate(options, out _);

    /// <param name="options">The options to check.</param>
    /// <param name="configuration">The parsed <see cref="RedisPoolOptions.Configuration"/> when it parsed and names an endpoint, else null.</param>
    public static List<string> Validate(RedisPoolOptions options, out ConfigurationOptions? configuration)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        configuration = null;

        if (!RedisClientNames.IsValidPart(options.Name))
        {
            errors.Add(Bad(nameof(options.Name), options.Name, "must be 1-64 characters of letters, digits, '-', '_' or '.' (it is part of CLIENT SETNAME)"));
        }

        if (string.IsNullOrWhiteSpace(options.Configuration))
        {
            errors.Add($"{nameof(options.Configuration)} is required: a StackExchange.Redis configuration string such as \"localhost:6379\".");
        }
        else
        {
            try
            {
                var parsed = ConfigurationOptions.Parse(options.Configuration);
                if (parsed.EndPoints.Count == 0)
                {
                    errors.Add($"{nameof(options.Configuration)} names no endpoint: add one such as \"localhost:6379\".");
                }
                else
                {
                    configuration = parsed;
                }
            }
            catch (ArgumentException ex)
            {
                // The parser's message may quote the string; it can hold a password, so only its kind is reported.
                errors.Add($"{nameof(options.Configuration)} could not be parsed by StackExchange.Redis ({ex.GetType().Name}).");
            }
        }

        if (!RedisClientNames.IsValidPart(options.ServiceName))
        {
            errors.Add(Bad(nameof(options.ServiceName), options.ServiceName, "must be 1-64 characters of letters, digits, '-', '_' or '.' (CLIENT SETNAME cannot carry spaces)"));
        }

        if (options.InstanceId is not null && !RedisClientNames.IsValidPart(options.InstanceId))
        {
            errors.Add(Bad(nameof(options.InstanceId), options.InstanceId, "must be 1-64 characters of letters, digits, '-', '_' or '.' (CLIENT SETNAME cannot carry spaces)"));
        }

        AtLeast(errors, nameof(options.MaxConnections), options.MaxConnections, 1);
        AtLeast(errors, nameof(options.MinMultiplexers), options.MinMultiplexers, 1);
        AtLeast(errors, nameof(options.MaxMultiplexers), options.MaxMultiplexers, 1);
        if (options.MinMultiplexers > options.MaxMultiplexers)
        {
            errors.Add($"{nameof(options.MinMultiplexers)} ({options.MinMultiplexers}) must not exceed {nameof(options.MaxMultiplexers)} ({options.MaxMultiplexers}).");
        }

        var socketsPerMultiplexer = options.SharedSubscriptionConnection ? 1 : 2;
        if (options.MinMultiplexers * socketsPerMultiplexer > options.MaxConnections && options.MaxConnections >= 1 && options.MinMultiplexers >= 1)
        {
            errors.Add($"{nameof(options.MinMultiplexers)} ({options.MinMultiplexers}) needs {options.MinMultiplexers * socketsPerMultiplexer} sockets, more than {nameof(options.MaxConnections)} ({options.MaxConnections}).");
        }

        AtLeast(errors, nameof(options.MaxInFlight), options.MaxInFlight, 1);
        AtLeast(errors, nameof(options.MaxQueueLength), options.MaxQueueLength, 0);
        TimerDuration(errors, nameof(options.QueueTimeout), options.QueueTimeout);
        RedisTimeout(errors, nameof(options.ConnectTimeout), options.ConnectTimeout);
        if (options.ShutdownGracePeriod < TimeSpan.Zero)
        {
            errors.Add(Bad(nameof(options.ShutdownGracePeriod), Format(options.ShutdownGracePeriod), "must be zero or more"));
        }

        AtMost(errors, nameof(options.ShutdownGracePeriod), options.ShutdownGracePeriod, MaxTimerDuration, TimerLimit);

        ValidateLeases(errors, options.Leases);
        ValidateBreaker(errors, options.Breaker);
        ValidateMonitor(errors, options.Monitor);
        FleetOptionsValidation.Validate(errors, options);

        // Production connection options: a server that cannot say its maxclients.
        if (options.Monitor?.MaxClients is { } maxClients && maxClients < 1)
        {
            errors.Add(Bad("Monitor.MaxClients", maxClients.ToString(CultureInfo.InvariantCulture), "must be at least 1 when set (null: ask the server)"));
        }

        return errors;
    }

    /// <returns>The parsed <see cref="RedisPoolOptions.Configuration"/>: the pool's parts share this one parse.</returns>
    public static ConfigurationOptions ThrowIfInvalid(RedisPoolOptions options)
    {
        var errors = Validate(options, out var configuration);
        if (errors.Count > 0 || configuration is null)
        {
            throw new ArgumentException(
                $"Invalid RedisPoolOptions for pool '{options.Name}': " + string.Join(" ", errors),
                nameof(options));
        }

        return configuration;
    }

    private static void ValidateLeases(List<string> errors, RedisPoolLeaseOptions? leases)
    {
        if (leases is null)
        {
            errors.Add("Leases must not be null.");
            return;
        }

        const string P = nameof(RedisPoolOptions.Leases) + ".";
        AtLeast(errors, P + nameof(leases.MaxLeases), leases.MaxLeases, 0);
        AtLeast(errors, P + nameof(leases.MinIdle), leases.MinIdle, 0);
        if (leases.MinIdle > leases.MaxLeases)
        {
            errors.Add($"{P}{nameof(leases.MinIdle)} ({leases.MinIdle}) must not exceed {P}{nameof(leases.MaxLeases)} ({leases.MaxLeases}).");
        }

        AtLeast(errors, P + nameof(leases.MaxWaiters), leases.MaxWaiters, 0);
        TimerDuration(errors, P + nameof(leases.AcquireTimeout), leases.AcquireTimeout);
        Positive(errors, P + nameof(leases.IdleTimeout), leases.IdleTimeout);
        Positive(errors, P + nameof(leases.MaxLifetime), leases.MaxLifetime);
        Positive(errors, P + nameof(leases.ValidateAfterIdle), leases.ValidateAfterIdle);
        RedisTimeout(errors, P + nameof(leases.CommandTimeout), leases.CommandTimeout);
        if (leases.LeakDetectionThreshold is { } leak)
        {
            TimerDuration(errors, P + nameof(leases.LeakDetectionThreshold), leak);
        }
    }

    private static void ValidateBreaker(List<string> errors, RedisPoolBreakerOptions? breaker)
    {
        if (breaker is null)
        {
            errors.Add("Breaker must not be null.");
            return;
        }

        const string P = nameof(RedisPoolOptions.Breaker) + ".";
        Positive(errors, P + nameof(breaker.BreakDuration), breaker.BreakDuration);
        Positive(errors, P + nameof(breaker.MaxBreakDuration), breaker.MaxBreakDuration);
        AtMost(errors, P + nameof(breaker.MaxBreakDuration), breaker.MaxBreakDuration, MaxBreakDuration, "its break, jittered up to a quarter longer, must fit a .NET timer");
        if (breaker.MaxBreakDuration < breaker.BreakDuration)
        {
            errors.Add($"{P}{nameof(breaker.MaxBreakDuration)} ({Format(breaker.MaxBreakDuration)}) must be at least {P}{nameof(breaker.BreakDuration)} ({Format(breaker.BreakDuration)}).");
        }

        AtLeast(errors, P + nameof(breaker.ConnectFailureThreshold), breaker.ConnectFailureThreshold, 1);
    }

    private static void ValidateMonitor(List<string> errors, RedisPoolMonitorOptions? monitor)
    {
        if (monitor is null)
        {
            errors.Add("Monitor must not be null.");
            return;
        }

        const string P = nameof(RedisPoolOptions.Monitor) + ".";
        TimerDuration(errors, P + nameof(monitor.PollInterval), monitor.PollInterval);
        if (!(monitor.WarningUtilization > 0 && monitor.WarningUtilization < 1))
        {
            errors.Add(Bad(P + nameof(monitor.WarningUtilization), monitor.WarningUtilization.ToString(CultureInfo.InvariantCulture), "must be greater than 0 and less than 1"));
        }

        if (!(monitor.CriticalUtilization > 0 && monitor.CriticalUtilization <= 1))
        {
            errors.Add(Bad(P + nameof(monitor.CriticalUtilization), monitor.CriticalUtilization.ToString(CultureInfo.InvariantCulture), "must be greater than 0 and at most 1"));
        }

        if (monitor.WarningUtilization >= monitor.CriticalUtilization)
        {
            errors.Add($"{P}{nameof(monitor.WarningUtilization)} ({monitor.WarningUtilization.ToString(CultureInfo.InvariantCulture)}) must be less than {P}{nameof(monitor.CriticalUtilization)} ({monitor.CriticalUtilization.ToString(CultureInfo.InvariantCulture)}).");
        }
    }

    private static void AtLeast(List<string> errors, string name, int value, int min)
    {
        if (value < min)
        {
            errors.Add(Bad(name, value.ToString(CultureInfo.InvariantCulture), $"must be at least {min}"));
        }
    }

    private static void Positive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add(Bad(name, Format(value), "must be greater than zero"));
        }
    }

    /// <summary>Greater than zero, and no longer than a .NET timer can wait: the pool arms a timer with it.</summary>
    private static void TimerDuration(List<string> errors, string name, TimeSpan value)
    {
        Positive(errors, name, value);
        AtMost(errors, name, value, MaxTimerDuration, TimerLimit);
    }

    /// <summary>Greater than zero, and within the int milliseconds StackExchange.Redis takes its timeouts in.</summary>
    private static void RedisTimeout(List<string> errors, string name, TimeSpan value)
    {
        Positive(errors, name, value);
        AtMost(errors, name, value, MaxConnectTimeout, "StackExchange.Redis takes it in int milliseconds");
    }

    private static void AtMost(List<string> errors, string name, TimeSpan value, TimeSpan max, string why)
    {
        if (value > max)
        {
            errors.Add(Bad(name, Format(value), $"must be at most {Format(max)} ({why})"));
        }
    }

    private static string Bad(string name, string? value, string rule) => $"{name} ({(value is null ? "null" : $"'{value}'")}) {rule}.";

    internal static string Format(TimeSpan value) => value.ToString("c", CultureInfo.InvariantCulture);
}
