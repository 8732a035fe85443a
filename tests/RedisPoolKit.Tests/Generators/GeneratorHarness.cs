using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Generators;

/// <summary>Runs the generators over a small compilation that references the real StackExchange.Redis.</summary>
internal static class GeneratorHarness
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Append(typeof(IDatabase).Assembly.Location)
            .Distinct(StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray());

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public static CSharpCompilation Compile(string source) => CSharpCompilation.Create(
        "GeneratorSample",
        [CSharpSyntaxTree.ParseText(source, ParseOptions)],
        References.Value,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver() => CSharpGeneratorDriver.Create(
        [new RedisPoolKit.Generators.RoutedDatabaseGenerator().AsSourceGenerator(), new RedisPoolKit.Generators.ForwardingGenerator().AsSourceGenerator()],
        parseOptions: ParseOptions,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorDriverRunResult Run) Run(string source)
    {
        var driver = Driver().RunGeneratorsAndUpdateCompilation(Compile(source), out var output, out var diagnostics);
        return (output, diagnostics, driver.GetRunResult());
    }

    /// <summary>Warnings count: the consuming project treats them as errors.</summary>
    public static List<string> Problems(Compilation compilation) =>
        compilation.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning)
            .Select(d => d.ToString())
            .ToList();

    public const string RouterContract = """
        using System;
        using System.Threading.Tasks;
        using StackExchange.Redis;

        namespace RedisPoolKit;

        internal readonly struct CommandRoute
        {
            public CommandRoute(IDatabase database, object entry) { Database = database; Entry = entry; }
            public IDatabase Database { get; }
            internal object Entry { get; }
        }

        internal sealed class CommandRouter
        {
            public bool TryRoute(int db, out CommandRoute route) => throw new NotImplementedException();
            public CommandRoute Route(int db) => throw new NotImplementedException();
            public ValueTask<CommandRoute> RouteAsync(int db) => throw new NotImplementedException();
            public bool TryRoute(int db, in RedisKey key, out CommandRoute route) => throw new NotImplementedException();
            public CommandRoute Route(int db, in RedisKey key) => throw new NotImplementedException();
            public ValueTask<CommandRoute> RouteAsync(int db, RedisKey key) => throw new NotImplementedException();
            public static RedisKey FirstKey(RedisKey[]? keys) => default;
            public void Exit(in CommandRoute route, Exception? failure) => throw new NotImplementedException();
            public void Exit(in CommandRoute route, Task completed) => throw new NotImplementedException();
            public IDatabase Pick(int db) => throw new NotImplementedException();
            public Task<T> Track<T>(CommandRoute route, Task<T> task) => throw new NotImplementedException();
            public Task Track(CommandRoute route, Task task) => throw new NotImplementedException();
            public Exception? Translate(Exception failure) => throw new NotImplementedException();
            public void ThrowIfNodeOpen(in RedisKey key) => throw new NotImplementedException();
            public Exception? NodeRefusal(in RedisKey key) => throw new NotImplementedException();
        }

        """;
}
