using RedisPoolKit.Cli.Output;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class DurationTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("10m", 600_000)]
    [InlineData("2h", 7_200_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("00:01:30", 90_000)]
    public void Parses(string text, double milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ten minutes")]
    [InlineData("5")]
    [InlineData("-5s")]
    public void Refuses(string text) => Assert.False(Duration.TryParse(text, out _));
}
