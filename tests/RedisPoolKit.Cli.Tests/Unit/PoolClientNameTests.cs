using System.Reflection;
using RedisPoolKit.Cli.Redis;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class PoolClientNameTests
{
    [Theory]
    [InlineData("order-service:pod-7:cache:mux0", "order-service", "pod-7", "cache", "mux", 0)]
    [InlineData("billing.api:host-1234:queue_2:lease15", "billing.api", "host-1234", "queue_2", "lease", 15)]
    [InlineData("a:b:c:mon1", "a", "b", "c", "mon", 1)]
    [InlineData("a:b:c:probe0", "a", "b", "c", "probe", 0)]
    public void Parses_a_pool_socket_name(string name, string service, string instance, string pool, string role, int index)
    {
        Assert.True(PoolClientName.TryParse(name, out var parsed));
        Assert.Equal(new PoolClientName(service, instance, pool, role, index), parsed);
        Assert.Equal(name, parsed.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("harness-admin")]
    [InlineData("a:b:mux0")]
    [InlineData("a:b:c:d:mux0")]
    [InlineData("a:b:c:mux")]
    [InlineData("a:b:c:worker0")]
    [InlineData("a:b:c:mux-1")]
    [InlineData("a:b:c:mux1x")]
    [InlineData("a::c:mux0")]
    [InlineData("a b:b:c:mux0")]
    [InlineData("a:b:c/d:mux0")]
    public void Refuses_names_of_another_format(string name) => Assert.False(PoolClientName.TryParse(name, out _));

    [Fact]
    public void Refuses_a_part_longer_than_64_characters()
    {
        Assert.True(PoolClientName.TryParse(new string('s', 64) + ":i:p:mux0", out _));
        Assert.False(PoolClientName.TryParse(new string('s', 65) + ":i:p:mux0", out _));
    }

    /// <summary>The library builds the names; this parser mirrors the format. Every role the library has must parse back to its parts.</summary>
    [Fact]
    public void Parses_every_name_the_library_builds_for_every_role()
    {
        var library = typeof(RedisPool).Assembly;
        var names = library.GetType("RedisPoolKit.RedisClientNames", throwOnError: true)!;
        var roles = library.GetType("RedisPoolKit.SocketRole", throwOnError: true)!;
        const BindingFlags Static = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static;
        var prefix = (string)names.GetMethod("Prefix", Static)!.Invoke(null, ["order-service", "pod-7.eu_1", "cache"])!;
        var build = names.GetMethod("Build", Static)!;
        var rolePrefix = names.GetMethod("RolePrefix", Static)!;

        var values = Enum.GetValues(roles);
        Assert.Equal(PoolClientName.Roles.Count, values.Length);
        foreach (var role in values)
        {
            var name = (string)build.Invoke(null, [prefix, role, 12])!;
            Assert.True(PoolClientName.TryParse(name, out var parsed), $"'{name}' ({role}) does not parse");
            Assert.Equal(new PoolClientName("order-service", "pod-7.eu_1", "cache", (string)rolePrefix.Invoke(null, [role])!, 12), parsed);
        }
    }
}
