using System.Linq.Expressions;
using System.Reflection;

namespace RedisPoolKit.Tests.Pool;

public class RedisPoolOptionsCopyTests
{
    [Fact]
    public void Clone_carries_every_public_option_including_the_nested_ones()
    {
        var source = new RedisPoolOptions();
        var leaves = SetEveryOption(source, nameof(RedisPoolOptions));

        var copy = RedisPoolOptionsCopy.Clone(source);

        Assert.NotEmpty(leaves);
        Assert.All(leaves, leaf => Assert.True(
            Equals(leaf.Expected, leaf.Read(copy)),
            $"{leaf.Path} is {leaf.Read(copy) ?? "null"} in the pool's copy, {leaf.Expected} in the options it was built from: RedisPoolOptionsCopy.Clone does not copy it."));
    }

    [Fact]
    public void Clone_shares_no_nested_options_object_with_its_source()
    {
        var source = new RedisPoolOptions();

        var copy = RedisPoolOptionsCopy.Clone(source);

        foreach (var property in NestedOptions(typeof(RedisPoolOptions)))
        {
            Assert.NotSame(property.GetValue(source), property.GetValue(copy));
        }

        source.Leases.MaxLeases = 42;
        Assert.NotEqual(42, copy.Leases.MaxLeases);
    }

    private sealed record Leaf(string Path, Func<RedisPoolOptions, object?> Read, object? Expected);

    // A nested options object is a class of this library with settable properties of its own.
    private static bool IsNestedOptions(Type type) =>
        type.IsClass && type.Assembly == typeof(RedisPoolOptions).Assembly && type.GetConstructor(Type.EmptyTypes) is not null;

    private static IEnumerable<PropertyInfo> NestedOptions(Type type) =>
        Settable(type).Where(p => IsNestedOptions(p.PropertyType));

    private static IEnumerable<PropertyInfo> Settable(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanRead && p.SetMethod is { IsPublic: true });

    private static List<Leaf> SetEveryOption(RedisPoolOptions root, string path)
    {
        var leaves = new List<Leaf>();
        Visit(root, path, static options => options, leaves);
        return leaves;
    }

    private static void Visit(object target, string path, Func<RedisPoolOptions, object> reach, List<Leaf> leaves)
    {
        foreach (var property in Settable(target.GetType()))
        {
            var propertyPath = $"{path}.{property.Name}";
            if (IsNestedOptions(property.PropertyType))
            {
                var nested = property.GetValue(target) ?? Activator.CreateInstance(property.PropertyType)!;
                property.SetValue(target, nested);
                Visit(nested, propertyPath, options => property.GetValue(reach(options))!, leaves);
                continue;
            }

            var value = NonDefault(property.PropertyType, property.GetValue(target), propertyPath);
            property.SetValue(target, value);
            Assert.Equal(value, property.GetValue(target));
            leaves.Add(new Leaf(propertyPath, options => property.GetValue(reach(options)), value));
        }
    }

    // A value different from the current (default) one; validity does not matter, the copy does not validate.
    private static object NonDefault(Type type, object? current, string path)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string))
        {
            return $"{current}-changed";
        }

        if (underlying == typeof(bool))
        {
            return !(bool)(current ?? false);
        }

        if (underlying == typeof(int))
        {
            return (int)(current ?? 0) + 7;
        }

        if (underlying == typeof(long))
        {
            return (long)(current ?? 0L) + 7;
        }

        if (underlying == typeof(double))
        {
            return (double)(current ?? 0.0) + 0.0123;
        }

        if (underlying == typeof(TimeSpan))
        {
            return (TimeSpan)(current ?? TimeSpan.Zero) + TimeSpan.FromMilliseconds(1234);
        }

        if (underlying.IsEnum)
        {
            return Enum.GetValues(underlying).Cast<object>().First(v => !v.Equals(current));
        }

        if (typeof(Delegate).IsAssignableFrom(underlying))
        {
            var invoke = underlying.GetMethod("Invoke")!;
            var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType)).ToArray();
            return Expression.Lambda(underlying, Expression.Default(invoke.ReturnType), parameters).Compile();
        }

        throw new InvalidOperationException($"{path} has type {type}: teach this test a non-default value for it.");
    }
}
