using Microsoft.Extensions.Logging;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using StackExchange.Redis;

namespace RedisPoolKit.IntegrationTests.Monitoring;

// The promise: the configuration string's password never reaches a log line or an exception text.
[Collection(FaultCollection.Name)]
public sealed class SecretSafetyTests
{
    private const string Password = "Corr3ct-Horse-Battery-9f2c";
    private const string WrongPassword = "Wr0ng-Staple-Secret-71ab";

    private static RedisConnectionFactory CreateFactory(RedisServer server, string password, ILogger logger)
    {
        var options = new RedisPoolOptions
        {
            Name = "secrets",
            Configuration = $"127.0.0.1:{server.Port},password={password}",
            // Generous: the machine is shared; the wrong password and the dead server fail fast anyway.
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        var configuration = RedisPoolOptionsValidator.ThrowIfInvalid(options);
        return new RedisConnectionFactory(options, configuration, new ConnectionBudget(options.MaxConnections), PoolParts.Breaker(options, logger), TimeProvider.System, logger);
    }

    private static void AssertFreeOfSecrets(string text)
    {
        Assert.DoesNotContain(Password, text, StringComparison.Ordinal);
        Assert.DoesNotContain(WrongPassword, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Passwords_never_appear_in_logs_or_exceptions()
    {
        await using var server = await RedisServer.StartAsync(new RedisServerOptions { Password = Password });
        using var logs = new CapturingLoggerProvider();
        var logger = logs.CreateLogger("secrets");
        var texts = new List<string>();

        var factory = CreateFactory(server, Password, logger);
        texts.Add(factory.EndPointsText);
        texts.Add(factory.ClientNamePrefix);
        await using (var connection = await factory.ConnectAsync(SocketRole.Multiplexer, 0, CancellationToken.None))
        {
            Assert.Equal("PONG", (string?)await connection.Multiplexer.GetDatabase().ExecuteAsync("PING"));
        }

        var wrong = CreateFactory(server, WrongPassword, logger);
        var refused = await Assert.ThrowsAnyAsync<RedisException>(() => wrong.ConnectAsync(SocketRole.Lease, 1, CancellationToken.None));
        texts.Add(refused.ToString());
        Assert.Contains($"127.0.0.1:{server.Port}", refused.Message, StringComparison.Ordinal);

        var survivor = await factory.ConnectAsync(SocketRole.Multiplexer, 2, CancellationToken.None);
        await server.KillAsync();
        var lost = await Assert.ThrowsAsync<RedisConnectionException>(() => survivor.Multiplexer.GetDatabase().StringGetAsync("k"));
        texts.Add(lost.ToString());
        texts.Add(survivor.Multiplexer.GetStatus());
        var down = await Assert.ThrowsAnyAsync<RedisException>(() => factory.ConnectAsync(SocketRole.Lease, 3, CancellationToken.None));
        texts.Add(down.ToString());
        await survivor.DisposeAsync();

        texts.AddRange(logs.Lines.Select(l => l.Text));
        Assert.Contains(logs.Lines, l => l.EventId.Id == 1);
        Assert.True(logs.Lines.Count(l => l.EventId.Id == 2) >= 2, "both failed connects are logged");
        Assert.All(texts, AssertFreeOfSecrets);
    }
}
