using System.Globalization;

namespace RedisPoolKit;

/// <summary>The checks of <see cref="RedisPoolOptions.Fleet"/>, reported with every other invalid option.</summary>
internal static class FleetOptionsValidation
{
    public static void Validate(List<string> errors, RedisPoolOptions options)
    {
        var fleet = options.Fleet;
        if (fleet is null)
        {
            errors.Add("Fleet must not be null.");
            return;
        }

        const string P = nameof(RedisPoolOptions.Fleet) + ".";
        if (!fleet.Enabled)
        {
            return;
        }

        if (options.Leases is not null && options.MinMultiplexers >= 1)
        {
            var floor = FleetShare.Floor(options);
            if (fleet.MaxConnections < floor)
            {
                errors.Add($"{P}{nameof(fleet.MaxConnections)} ({fleet.MaxConnections.ToString(CultureInfo.InvariantCulture)}) must be at least {floor}: the sockets one instance needs to work ('MinMultiplexers' sockets{(options.Leases.MaxLeases > 0 ? " plus one lease socket" : string.Empty)}). Set it to what every instance of '{options.ServiceName}' may hold together on the server.");
            }
        }

        if (fleet.HeartbeatInterval <= TimeSpan.Zero || fleet.HeartbeatInterval > RedisPoolOptionsValidator.MaxTimerDuration)
        {
            errors.Add($"{P}{nameof(fleet.HeartbeatInterval)} ('{RedisPoolOptionsValidator.Format(fleet.HeartbeatInterval)}') must be greater than zero and at most {RedisPoolOptionsValidator.Format(RedisPoolOptionsValidator.MaxTimerDuration)}.");
        }

        if (fleet.InstanceTtl > RedisPoolOptionsValidator.MaxTimerDuration || fleet.InstanceTtl.Ticks / 2 < fleet.HeartbeatInterval.Ticks)
        {
            errors.Add($"{P}{nameof(fleet.InstanceTtl)} ('{RedisPoolOptionsValidator.Format(fleet.InstanceTtl)}') must be at least twice {P}{nameof(fleet.HeartbeatInterval)} ('{RedisPoolOptionsValidator.Format(fleet.HeartbeatInterval)}'), so a late heartbeat never drops a live instance, and at most {RedisPoolOptionsValidator.Format(RedisPoolOptionsValidator.MaxTimerDuration)}.");
        }
    }
}
