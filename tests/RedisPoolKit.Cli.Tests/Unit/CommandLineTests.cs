using RedisPoolKit.Cli.Tests.Infrastructure;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class CommandLineTests
{
    [Fact]
    public async Task Help_lists_every_command()
    {
        var result = await Redispool.RunAsync("--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var command in (string[])["inspect", "watch", "kill-idle", "doctor", "budget"])
        {
            Assert.Contains(command, result.Output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("kill-idle", "127.0.0.1:6379")]
    [InlineData("kill-idle", "127.0.0.1:6379", "--idle", "soon")]
    [InlineData("kill-idle", "127.0.0.1:6379", "--idle", "1m", "--role", "worker")]
    [InlineData("kill-idle", "127.0.0.1:6379", "--idle", "1m", "--unnamed", "--service", "orders")]
    [InlineData("doctor")]
    [InlineData("doctor", "--bogus")]
    [InlineData("nonsense")]
    public async Task A_command_line_that_does_not_parse_exits_2_with_the_reason(params string[] args)
    {
        var result = await Redispool.RunAsync(args);

        Assert.Equal(2, result.ExitCode);
        Assert.NotEmpty(result.Error);
    }
}
