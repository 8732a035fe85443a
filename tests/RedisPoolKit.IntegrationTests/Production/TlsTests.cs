using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using RedisPoolKit.IntegrationTests.Infrastructure;
using RedisPoolKit.Testing;
using Xunit.Abstractions;

namespace RedisPoolKit.IntegrationTests.Production;

/// <summary>
/// TLS with certificates the test makes: <see cref="RedisPoolOptions.ConfigureOptions"/> carries the validation
/// callback to every socket; a rejected certificate fails fast and names TLS without tripping the breaker; a full
/// server over TLS (which drops the socket without a word) still opens the breaker.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class TlsTests(ITestOutputHelper output) : RedisTestBase(output)
{
    private readonly string _directory = Directory.CreateTempSubdirectory("redispoolkit-tls-").FullName;

    [Fact]
    public async Task A_validation_callback_that_accepts_the_test_CA_connects_every_socket_over_TLS()
    {
        var (server, tlsPort, ca) = await StartTlsServerAsync();
        var validated = 0;
        await using var pool = new RedisPool(Options(tlsPort, o => o.CertificateValidation += (_, certificate, _, _) =>
        {
            Interlocked.Increment(ref validated);
            return certificate?.Issuer == ca;
        }));

        await pool.ConnectAsync();
        await pool.GetDatabase().StringSetAsync("tls", "ok");
        await using (var lease = await pool.LeaseAsync())
        {
            Assert.Equal("ok", (string?)await lease.Database.StringGetAsync("tls"));
        }

        Assert.True(Volatile.Read(ref validated) >= 2, "the callback ran for the multiplexer and the lease socket");
        var clients = await server.ClientListAsync();
        Assert.Equal(2, clients.Count(c => c.Name.StartsWith("tests:", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_validation_callback_that_rejects_fails_fast_naming_TLS_without_tripping_the_breaker()
    {
        var (_, tlsPort, _) = await StartTlsServerAsync();
        // "Fast" means the rejection ends the connect, not ConnectTimeout (generous here: on a busy 2-core machine the
        // first handshake in the process took more than 3 s, and a timeout does not name TLS).
        var options = Options(tlsPort, o => o.CertificateValidation += (_, _, _, _) => false);
        var connectTimeout = options.ConnectTimeout;
        await using var pool = new RedisPool(options);

        for (var i = 0; i < 4; i++)
        {
            var watch = Stopwatch.StartNew();
            var failure = await Assert.ThrowsAnyAsync<RedisPoolException>(() => pool.ConnectAsync());
            watch.Stop();
            Output.WriteLine($"{watch.Elapsed.TotalMilliseconds:F0} ms: {failure}");
            Assert.IsNotType<RedisPoolCircuitOpenException>(failure);
            Assert.DoesNotContain("ConnectTimeout", failure.Message, StringComparison.Ordinal);
            Assert.Contains("TLS", failure.Message, StringComparison.Ordinal);
            Assert.True(watch.Elapsed < connectTimeout, $"a rejected handshake waited out ConnectTimeout ({watch.Elapsed})");
        }

        Assert.Equal(RedisPoolCircuitState.Closed, pool.CircuitState);
    }

    [Fact]
    public async Task A_full_server_over_TLS_opens_the_breaker()
    {
        var (server, tlsPort, _) = await StartTlsServerAsync();
        await using var pool = new RedisPool(Options(tlsPort, o => o.CertificateValidation += (_, _, _, _) => true, breaker: true));
        await pool.ConnectAsync();
        var connected = (await server.InfoAsync("clients"))["connected_clients"];
        await server.ConfigSetAsync("maxclients", connected);

        await Assert.ThrowsAnyAsync<RedisPoolException>(async () => await pool.LeaseAsync());
        await Eventually.TrueAsync(() => pool.CircuitState != RedisPoolCircuitState.Closed, TimeSpan.FromSeconds(15), "a full server over TLS opens the breaker");

        // The socket already open keeps serving.
        Assert.True(await pool.GetDatabase().StringSetAsync("still", "serving"));
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private static RedisPoolOptions Options(int tlsPort, Action<StackExchange.Redis.ConfigurationOptions> configure, bool breaker = false) => new()
    {
        Name = "tls",
        ServiceName = "tests",
        Configuration = $"127.0.0.1:{tlsPort.ToString(CultureInfo.InvariantCulture)},ssl=true,sslHost=localhost",
        ConfigureOptions = configure,
        MaxMultiplexers = 1,
        ConnectTimeout = TimeSpan.FromSeconds(15),
        Breaker = breaker ? new RedisPoolBreakerOptions { BreakDuration = TimeSpan.FromSeconds(1), MaxBreakDuration = TimeSpan.FromSeconds(2) } : new RedisPoolBreakerOptions(),
    };

    /// <summary>A server with its plain port for the harness and a TLS port for the pool, on certificates made here.</summary>
    private async Task<(RedisServer Server, int TlsPort, string Ca)> StartTlsServerAsync()
    {
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=RedisPoolKit Test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));

        using var serverKey = RSA.Create(2048);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var serverCert = serverRequest.Create(ca, now.AddDays(-1), now.AddDays(1), [1, 2, 3, 4, 5, 6, 7, 8]);

        var caPath = Path.Combine(_directory, "ca.crt");
        var certPath = Path.Combine(_directory, "server.crt");
        var keyPath = Path.Combine(_directory, "server.key");
        await File.WriteAllTextAsync(caPath, ca.ExportCertificatePem());
        await File.WriteAllTextAsync(certPath, serverCert.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, serverKey.ExportPkcs8PrivateKeyPem());

        var tlsPort = FreePort();
        var server = await StartServerAsync(new RedisServerOptions
        {
            Arguments =
            {
                "--tls-port", tlsPort.ToString(CultureInfo.InvariantCulture),
                "--tls-cert-file", certPath,
                "--tls-key-file", keyPath,
                "--tls-ca-cert-file", caPath,
                "--tls-auth-clients", "no",
            },
        });
        return (server, tlsPort, ca.Subject);
    }

    private static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }
}
