using BenchmarkDotNet.Running;

// Pick scenarios on the command line, e.g. `--filter *Admission*` or `--list flat`; see docs/Performance.md.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
