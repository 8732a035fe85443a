using IncidentReplay;
using RedisPoolKit.IntegrationTests.Infrastructure;

namespace RedisPoolKit.IntegrationTests.Samples;

[Collection(FaultCollection.Name)]
public sealed class IncidentReplayTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly string _out = Path.Combine(Path.GetTempPath(), "incident-replay-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Quick_replay_passes_and_writes_the_report_and_its_charts()
    {
        var exitCode = await ReplayApp.Main(["--quick", "--out", _out]);

        Assert.Equal(0, exitCode);
        var html = await File.ReadAllTextAsync(Path.Combine(_out, "incident-report.html"));
        Assert.Contains("PASS", html, StringComparison.Ordinal);
        Assert.Contains("A1 multiplexer per request", html, StringComparison.Ordinal);
        foreach (var chart in new[] { "connected-clients.png", "errors-per-second.png", "p99-latency.png" })
        {
            Assert.Contains(chart, html, StringComparison.Ordinal);
            var bytes = await File.ReadAllBytesAsync(Path.Combine(_out, chart));
            Assert.True(bytes.Length > 5_000, $"{chart} is only {bytes.Length} bytes");
            Assert.Equal(PngSignature, bytes[..8]);
        }
    }

    [Fact]
    public async Task Autoscale_replay_stays_within_the_fleet_budget_with_it_and_goes_past_it_without()
    {
        // Exit code 0 only when, with the fleet budget, peak connected_clients stayed within Fleet.MaxConnections plus
        // every other client's sockets, without it went past that, and every notification was consumed.
        Assert.Equal(0, await ReplayApp.Main(["--autoscale"]));
    }

    [Fact]
    public async Task Help_documents_every_option()
    {
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        int exitCode;
        try
        {
            exitCode = await ReplayApp.Main(["--help"]);
        }
        finally
        {
            Console.SetOut(original);
        }

        Assert.Equal(0, exitCode);
        foreach (var option in new[] { "--maxclients", "--duration", "--scale", "--quick", "--out", "--redis", "--allow-config", "--autoscale", "--help" })
        {
            Assert.Contains(option, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--maxclients", "three")]
    [InlineData("--allow-config")]
    public async Task Bad_options_exit_with_2_before_touching_a_server(params string[] args)
    {
        Assert.Equal(2, await ReplayApp.Main(args));
    }

    public void Dispose()
    {
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }
    }
}
