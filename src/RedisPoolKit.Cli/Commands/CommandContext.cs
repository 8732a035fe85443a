using Spectre.Console;

namespace RedisPoolKit.Cli.Commands;

/// <summary>What every command writes to and reads time from.</summary>
internal sealed record CommandContext(IAnsiConsole Console, TextWriter Output, TextWriter Error, TimeProvider Time);
