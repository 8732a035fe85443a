using RedisPoolKit.Cli;

var plain = Console.IsOutputRedirected;
return await new CliApp(Console.Out, Console.Error, TimeProvider.System, plain).RunAsync(args);
