using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace RedisPoolKit;

/// <summary>
/// Adapts <see cref="RedisPoolOptionsValidator"/> to <see cref="IValidateOptions{TOptions}"/> for one named pool, so
/// <c>ValidateOnStart</c> stops the host with every invalid option of that pool, and checks that the options kept the
/// pool's key as their name.
/// </summary>
internal sealed class RedisPoolValidateOptionsAdapter(string poolName, IConfiguration? section = null) : IValidateOptions<RedisPoolOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisPoolOptions options)
    {
        if (!string.Equals(name, poolName, StringComparison.Ordinal))
        {
            return ValidateOptionsResult.Skip;
        }

        ArgumentNullException.ThrowIfNull(options);
        var errors = RedisPoolOptionsValidator.Validate(options);
        if (!string.Equals(options.Name, poolName, StringComparison.Ordinal))
        {
            // The key is the name on metrics and CLIENT LIST; a different Name would make them disagree with DI.
            errors.Add($"Name ('{options.Name}') must equal the pool's registration name ('{poolName}'): remove Name from the pool's configuration or make it match.");
        }

        // Under DI the connection string may also come from ConnectionStrings:{name}: name both places it was looked for.
        if (string.IsNullOrWhiteSpace(options.Configuration))
        {
            errors.Add($"neither the pool's options nor the host configuration's 'ConnectionStrings:{poolName}' set a connection string; set one of them.");
        }

        // A mistyped section path binds nothing; say so rather than only "Configuration is required".
        if (errors.Count > 0 && section is IConfigurationSection { } bound && !bound.Exists())
        {
            errors.Insert(0, $"the configuration section '{bound.Path}' passed to AddRedisPool is missing or empty.");
        }

        return errors.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(errors.Select(e => $"Redis pool '{poolName}': {e}"));
    }
}
