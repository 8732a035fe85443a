using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RedisPoolKit;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers RedisPoolKit pools in a service collection.</summary>
public static class RedisPoolServiceCollectionExtensions
{
    /// <summary>
    /// Registers the default pool, named <c>"default"</c>: unkeyed <see cref="IRedisPool"/> (and keyed <c>"default"</c>),
    /// its options (named <c>"default"</c>, validated at host start) and a hosted service that connects it at start and
    /// disposes it at stop.
    /// </summary>
    /// <exception cref="InvalidOperationException">The default pool is already registered.</exception>
    public static IRedisPoolBuilder AddRedisPool(this IServiceCollection services, Action<RedisPoolOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = Register(services, RedisPoolDefaults.Name, isDefault: true);
        services.Configure(RedisPoolDefaults.Name, configure);
        return builder;
    }

    /// <summary>
    /// Registers a pool resolved as <c>[FromKeyedServices(name)] IRedisPool</c>, configured in code. Its options are the
    /// named options <paramref name="name"/>, validated at host start; its <see cref="RedisPoolOptions.Name"/> is <paramref name="name"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">A pool named <paramref name="name"/> is already registered.</exception>
    public static IRedisPoolBuilder AddRedisPool(this IServiceCollection services, string name, Action<RedisPoolOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = Register(services, name, isDefault: false);
        services.Configure(name, configure);
        return builder;
    }

    /// <summary>
    /// Registers a pool resolved as <c>[FromKeyedServices(name)] IRedisPool</c>, bound from a configuration section
    /// (e.g. <c>configuration.GetSection("Redis:Pools:cache")</c>): every option, the nested <c>Leases</c>,
    /// <c>Breaker</c> and <c>Monitor</c> sections, <c>TimeSpan</c>s as <c>"00:00:05"</c>. A key that matches no
    /// option fails the host start, so a misspelt setting is not silently ignored. Without a <c>Configuration</c> key
    /// the pool uses the connection string <c>ConnectionStrings:{name}</c> of the host's configuration.
    /// </summary>
    /// <exception cref="InvalidOperationException">A pool named <paramref name="name"/> is already registered.</exception>
    public static IRedisPoolBuilder AddRedisPool(this IServiceCollection services, string name, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        var builder = Register(services, name, isDefault: false, section);
        services.AddOptions<RedisPoolOptions>(name).Bind(section, binder => binder.ErrorOnUnknownConfiguration = true);
        return builder;
    }

    /// <summary>
    /// Registers a pool bound from a configuration section, as <see cref="AddRedisPool(IServiceCollection, string, IConfiguration)"/>,
    /// with code-level StackExchange.Redis settings (certificate callbacks, token authentication) the section cannot carry.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The pool's name and DI key.</param>
    /// <param name="section">The pool's configuration section.</param>
    /// <param name="configureOptions">Added to <see cref="RedisPoolOptions.ConfigureOptions"/>; the settings the pool owns are applied after it.</param>
    /// <exception cref="InvalidOperationException">A pool named <paramref name="name"/> is already registered.</exception>
    public static IRedisPoolBuilder AddRedisPool(this IServiceCollection services, string name, IConfiguration section, Action<StackExchange.Redis.ConfigurationOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        var builder = services.AddRedisPool(name, section);
        services.Configure<RedisPoolOptions>(name, options => options.ConfigureOptions += configureOptions);
        return builder;
    }

    /// <summary>
    /// Registers the default pool, as <see cref="AddRedisPool(IServiceCollection, Action{RedisPoolOptions})"/>, with
    /// code-level StackExchange.Redis settings added to <see cref="RedisPoolOptions.ConfigureOptions"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the pool's options.</param>
    /// <param name="configureOptions">Added to <see cref="RedisPoolOptions.ConfigureOptions"/>; the settings the pool owns are applied after it.</param>
    /// <exception cref="InvalidOperationException">The default pool is already registered.</exception>
    public static IRedisPoolBuilder AddRedisPool(this IServiceCollection services, Action<RedisPoolOptions> configure, Action<StackExchange.Redis.ConfigurationOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        var builder = services.AddRedisPool(configure);
        services.Configure<RedisPoolOptions>(RedisPoolDefaults.Name, options => options.ConfigureOptions += configureOptions);
        return builder;
    }

    private static RedisPoolBuilder Register(IServiceCollection services, string name, bool isDefault, IConfiguration? section = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!RedisClientNames.IsValidPart(name))
        {
            throw new ArgumentException(
                $"Redis pool name '{name}' must be 1-64 characters of letters, digits, '-', '_' or '.': it is part of every socket's CLIENT SETNAME.",
                nameof(name));
        }

        foreach (var descriptor in services)
        {
            if (descriptor.ServiceType == typeof(RedisPoolRegistration)
                && descriptor.ImplementationInstance is RedisPoolRegistration existing
                && string.Equals(existing.Name, name, StringComparison.Ordinal))
            {
                throw new InvalidOperationException(
                    isDefault || name == RedisPoolDefaults.Name
                        ? $"A Redis pool named '{name}' is already registered (AddRedisPool(configure) registers the default pool under that name); register each pool once."
                        : $"A Redis pool named '{name}' is already registered; register each pool once, or give the second pool another name.");
            }
        }

        services.AddSingleton(new RedisPoolRegistration(name));

        // Name first, so a Name in the user's configuration that differs from the key is reported, not overwritten.
        services.AddOptions<RedisPoolOptions>(name).Configure(options => options.Name = name).ValidateOnStart();

        // Aspire and ASP.NET Core keep connection strings under ConnectionStrings:{name}: used when no Configuration is set.
        services.AddOptions<RedisPoolOptions>(name).PostConfigure<IServiceProvider>((options, provider) =>
        {
            if (string.IsNullOrWhiteSpace(options.Configuration) && provider.GetService<IConfiguration>()?.GetConnectionString(name) is { Length: > 0 } connectionString)
            {
                options.Configuration = connectionString;
            }
        });
        services.AddSingleton<IValidateOptions<RedisPoolOptions>>(new RedisPoolValidateOptionsAdapter(name, section));

        // After every Configure and Bind: one service's pools group together in CLIENT LIST unless a pool names its own service.
        services.AddOptions<RedisPoolOptions>(name).PostConfigure<IServiceProvider>((options, provider) =>
        {
            if (options.ServiceName == RedisClientNames.DefaultServiceName
                && provider.GetService<IHostEnvironment>()?.ApplicationName is { Length: > 0 } application)
            {
                options.ServiceName = RedisClientNames.Sanitize(application);
            }
        });

        services.AddKeyedSingleton<IRedisPool>(name, (provider, _) => CreatePool(provider, name));
        if (isDefault)
        {
            services.AddSingleton(provider => provider.GetRequiredKeyedService<IRedisPool>(name));
        }

        services.Add(ServiceDescriptor.Singleton<IHostedService>(provider => new RedisPoolHostedService(provider, name)));
        return new RedisPoolBuilder(services, name, isDefault);
    }

    private static RedisPool CreatePool(IServiceProvider provider, string name)
    {
        var options = provider.GetRequiredService<IOptionsMonitor<RedisPoolOptions>>().Get(name);
        return new RedisPool(
            options,
            provider.GetService<ILoggerFactory>(),
            provider.GetService<TimeProvider>(),
            provider.GetService<IMeterFactory>());
    }
}
