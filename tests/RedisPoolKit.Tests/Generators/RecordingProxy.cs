using System.Reflection;

namespace RedisPoolKit.Tests.Generators;

/// <summary>A hand fake for any interface: records every call and answers with a preset result or a default.</summary>
public class RecordingProxy : DispatchProxy
{
    public List<(string Name, object?[] Args)> Calls { get; } = [];

    public Dictionary<string, object?> Results { get; } = new(StringComparer.Ordinal);

    public static (T Fake, RecordingProxy Recorder) Create<T>()
        where T : class
    {
        var fake = Create<T, RecordingProxy>();
        return (fake, (RecordingProxy)(object)fake);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        Calls.Add((targetMethod.Name, args ?? []));
        if (Results.TryGetValue(targetMethod.Name, out var result))
        {
            return result;
        }

        var type = targetMethod.ReturnType;
        return type.IsValueType && type != typeof(void) ? Activator.CreateInstance(type) : null;
    }
}
