namespace RedisPoolKit.LoadTests;

internal static class Soak
{
    public const string Name = "soak";
}
