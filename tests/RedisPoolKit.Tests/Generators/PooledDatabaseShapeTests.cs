using System.Reflection;
using System.Runtime.CompilerServices;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Generators;

/// <summary>
/// The router's bodies are not in this branch yet, so routing is checked by what each member calls (its IL),
/// not by running commands.
/// </summary>
public class PooledDatabaseShapeTests
{
    private static readonly Type[] Contract = [typeof(IDatabase), .. typeof(IDatabase).GetInterfaces()];

    private static IEnumerable<MethodInfo> Implementations(Type type) =>
        Contract.SelectMany(i => type.GetInterfaceMap(i).TargetMethods);

    [Fact]
    public void Pooled_database_implements_every_member_of_IDatabase_and_its_base_interfaces()
    {
        Assert.Contains(typeof(IDatabaseAsync), Contract);
        Assert.Contains(typeof(IRedis), Contract);
        Assert.Contains(typeof(IRedisAsync), Contract);

        var implementations = Implementations(typeof(PooledDatabase)).ToList();

        Assert.True(implementations.Count >= 600, $"only {implementations.Count} members");
        Assert.All(implementations, m =>
        {
            Assert.Equal(typeof(PooledDatabase), m.DeclaringType);
            Assert.False(m.IsAbstract);
            Assert.DoesNotContain(typeof(NotImplementedException), Called(m).Select(c => c.DeclaringType));
        });
    }

    [Fact]
    public void Every_command_is_admitted_and_released_through_the_router_and_scans_and_non_commands_are_not()
    {
        var routerCalls = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var method in Implementations(typeof(PooledDatabase)))
        {
            var calls = Called(method).Where(c => c.DeclaringType == typeof(CommandRouter)).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            var returns = method.ReturnType.IsGenericType ? method.ReturnType.GetGenericTypeDefinition() : method.ReturnType;
            string shape;
            if (method.Name is "CreateBatch" or "CreateTransaction" or "IsConnected" or "Wait" or "WaitAll" or "TryWait" or "get_Database" or "get_Multiplexer"
                || method.Name.EndsWith(".CreateTransaction", StringComparison.Ordinal))
            {
                shape = "not a command";
                Assert.DoesNotContain("Route", calls);
                Assert.DoesNotContain("TryRoute", calls);
            }
            else if (returns == typeof(IEnumerable<>) || returns == typeof(IAsyncEnumerable<>))
            {
                shape = "scan";
                Assert.Equal(["Pick"], calls);
            }
            else if (returns == typeof(Task) || returns == typeof(Task<>))
            {
                shape = "async";
                Assert.Subset(calls, new HashSet<string>(["TryRoute", "Track", "Exit"], StringComparer.Ordinal));
                var queued = typeof(PooledDatabase).GetMethod(
                    method.Name + "__Queued",
                    method.GetGenericArguments().Length,
                    BindingFlags.Instance | BindingFlags.NonPublic,
                    method.GetParameters().Select(p => p.ParameterType).ToArray());
                Assert.True(queued is not null, $"{method} has no queued path");
                Assert.NotNull(queued!.GetCustomAttribute<AsyncStateMachineAttribute>());
            }
            else
            {
                shape = "sync";
                Assert.Subset(calls, new HashSet<string>(["Route", "Exit"], StringComparer.Ordinal));
            }

            routerCalls[shape] = routerCalls.GetValueOrDefault(shape) + 1;
        }

        Assert.True(routerCalls["async"] >= 300, $"async {routerCalls["async"]}");
        Assert.True(routerCalls["sync"] >= 300, $"sync {routerCalls["sync"]}");
        Assert.True(routerCalls["scan"] >= 5, $"scan {routerCalls["scan"]}");
    }

    [Fact]
    public void A_command_with_a_key_or_keys_checks_its_first_keys_node_and_is_routed_by_it_and_others_are_not()
    {
        var keyed = 0;
        var multiKey = 0;
        foreach (var method in Implementations(typeof(PooledDatabase)))
        {
            var returns = method.ReturnType.IsGenericType ? method.ReturnType.GetGenericTypeDefinition() : method.ReturnType;
            var parameters = method.GetParameters();
            var calls = Called(method).Where(c => c.DeclaringType == typeof(CommandRouter)).ToList();
            if (returns == typeof(IEnumerable<>) || returns == typeof(IAsyncEnumerable<>) || !calls.Any(c => c.Name is "Route" or "TryRoute"))
            {
                continue;
            }

            var first = parameters.Select(p => p.ParameterType).FirstOrDefault(t => t == typeof(RedisKey) || t == typeof(RedisKey[]));
            var routedByKey = calls.Where(c => c.Name is "Route" or "TryRoute").All(c => c.GetParameters().Any(p => p.ParameterType.GetElementType() == typeof(RedisKey) || p.ParameterType == typeof(RedisKey)));
            if (first == typeof(RedisKey) || first == typeof(RedisKey[]))
            {
                Assert.True(calls.Exists(c => c.Name is "ThrowIfNodeOpen" or "NodeRefusal"), $"{method} does not check its key's node");
                Assert.True(routedByKey, $"{method} is not routed by its key");
                Assert.Equal(first == typeof(RedisKey[]), calls.Exists(c => c.Name == "FirstKey"));
                keyed++;
                multiKey += first == typeof(RedisKey[]) ? 1 : 0;
            }
            else
            {
                Assert.False(calls.Exists(c => c.Name is "ThrowIfNodeOpen" or "NodeRefusal"), $"{method} checks a node it has no key for");
                Assert.False(routedByKey, $"{method} is routed by a key it does not have");
            }
        }

        Assert.True(keyed >= 400, $"keyed {keyed}");
        Assert.True(multiKey >= 30, $"multi-key {multiKey}");
    }

    /// <summary>The methods and constructors a method's IL calls (call, callvirt, newobj).</summary>
    private static List<MethodBase> Called(MethodInfo method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray() ?? [];
        var found = new List<MethodBase>();
        for (var i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] is not (0x28 or 0x6F or 0x73))
            {
                continue;
            }

            var token = BitConverter.ToInt32(il, i + 1);
            if ((token >> 24) is not (0x06 or 0x0A or 0x2B))
            {
                continue;
            }

            try
            {
                var callee = method.Module.ResolveMethod(
                    token,
                    method.DeclaringType?.GetGenericArguments(),
                    method.IsGenericMethod ? method.GetGenericArguments() : null);
                if (callee is not null)
                {
                    found.Add(callee);
                }
            }
            catch (ArgumentException)
            {
                // A byte that only looks like a call opcode (inside an operand): its "token" resolves to nothing.
            }
        }

        return found;
    }
}
