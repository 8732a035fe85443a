using Spectre.Console;

namespace RedisPoolKit.Cli.Output;

internal static class CliConsole
{
    /// <summary>
    /// A Spectre console over <paramref name="writer"/>. <paramref name="plain"/> turns off colors, ANSI and
    /// interactivity (tests, pipes) and fixes the width so tables do not wrap names.
    /// </summary>
    public static IAnsiConsole Create(TextWriter writer, bool plain)
    {
        if (!plain)
        {
            return AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 160;
        return console;
    }
}
