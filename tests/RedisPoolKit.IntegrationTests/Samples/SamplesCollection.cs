namespace RedisPoolKit.IntegrationTests.Samples;

/// <summary>The samples open many sockets and run for tens of seconds: one at a time on a 2-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SamplesCollection
{
    public const string Name = "Samples";
}
