using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using RedisPoolKit.Testing;
using Xunit.Sdk;

namespace RedisPoolKit.Cli.Tests.Infrastructure;

/// <summary>
/// Plain sockets to a test server that send one command each (CLIENT SETNAME, SUBSCRIBE, BLPOP) and then stay
/// idle: a client per socket, exactly as CLIENT LIST counts them. Disposing closes them all.
/// </summary>
internal sealed class RawClients(RedisServer server) : IAsyncDisposable
{
    private readonly List<TcpClient> _clients = [];

    public int Count => _clients.Count;

    /// <summary>Opens a socket and sends <paramref name="command"/> (none: an unnamed client that only connected).</summary>
    public async Task OpenAsync(params string[] command)
    {
        var client = await server.ConnectRawAsync();
        _clients.Add(client);
        if (command.Length > 0)
        {
            var resp = new StringBuilder().Append('*').Append(command.Length).Append("\r\n");
            foreach (var part in command)
            {
                resp.Append('$').Append(Encoding.UTF8.GetByteCount(part)).Append("\r\n").Append(part).Append("\r\n");
            }

            await client.GetStream().WriteAsync(Encoding.UTF8.GetBytes(resp.ToString()));
        }
    }

    /// <summary>Waits until the server lists at least <paramref name="count"/> clients matching <paramref name="match"/>, each idle at least <paramref name="idleSeconds"/>.</summary>
    public static async Task WaitAsync(RedisServer server, Func<RedisClientInfo, bool> match, int count, int idleSeconds, string because)
    {
        var elapsed = Stopwatch.StartNew();
        var seen = 0;
        while (elapsed.Elapsed < TimeSpan.FromSeconds(60))
        {
            var clients = await server.ClientListAsync();
            seen = clients.Count(c => match(c) && c.Idle >= TimeSpan.FromSeconds(idleSeconds));
            if (seen >= count)
            {
                return;
            }

            await Task.Delay(50);
        }

        throw new XunitException($"{because}: expected {count} clients idle >= {idleSeconds} s, saw {seen}.");
    }

    public ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
