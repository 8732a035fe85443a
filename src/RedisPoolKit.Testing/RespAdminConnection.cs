using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;

namespace RedisPoolKit.Testing;

/// <summary>
/// One plain RESP2 socket to one server, for the harness's own commands to cluster nodes and sentinels.
/// A <see cref="ConnectionMultiplexer"/> pointed at one cluster node discovers the whole cluster and opens
/// a socket on every node, so per-node admin connections would multiply and show up on the nodes a test counts;
/// this connection stays on its one node, named <see cref="RedisServer.AdminClientName"/>.
/// </summary>
internal sealed class RespAdminConnection : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    private readonly IPEndPoint _endPoint;
    private readonly string? _password;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private TcpClient? _client;
    private BufferedStream? _stream;

    /// <param name="endPoint">The server.</param>
    /// <param name="password">The default user's password (<c>requirepass</c>), sent with <c>AUTH</c> on every new socket; null for none.</param>
    public RespAdminConnection(IPEndPoint endPoint, string? password = null)
    {
        _endPoint = endPoint;
        _password = password;
    }

    /// <summary>Opens the socket now, so it exists before a test fills the server to <c>maxclients</c>.</summary>
    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Sends one command and reads its reply; an error reply throws <see cref="RedisServerException"/>.</summary>
    /// <remarks>A broken or timed-out socket is dropped and the next command opens a new one.</remarks>
    public async Task<RedisResult> ExecuteAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(CommandTimeout);
            try
            {
                var stream = await EnsureOpenAsync(timeout.Token).ConfigureAwait(false);
                await WriteCommandAsync(stream, command, arguments, timeout.Token).ConfigureAwait(false);
                return await ReadReplyAsync(stream, timeout.Token).ConfigureAwait(false)
                    ?? throw new IOException("The server closed the connection.");
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                Close();
                if (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"{command} to 127.0.0.1:{_endPoint.Port} got no reply within {CommandTimeout.TotalSeconds:0} s."), ex);
                }

                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Close();
        }
        finally
        {
            _gate.Release();
        }
    }

    private static async Task WriteCommandAsync(Stream stream, string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var builder = new StringBuilder();
        builder.Append(CultureInfo.InvariantCulture, $"*{arguments.Count + 1}\r\n");
        foreach (var part in arguments.Prepend(command))
        {
            builder.Append(CultureInfo.InvariantCulture, $"${Encoding.UTF8.GetByteCount(part)}\r\n{part}\r\n");
        }

        await stream.WriteAsync(Encoding.UTF8.GetBytes(builder.ToString()), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Null when the server closed the connection before a reply started.</summary>
    private static async Task<RedisResult?> ReadReplyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
        if (line is null)
        {
            return null;
        }

        var payload = line[1..];
        switch (line[0])
        {
            case '+':
                return RedisResult.Create(payload, ResultType.SimpleString);
            case '-':
                throw new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, payload);
            case ':':
                return RedisResult.Create(long.Parse(payload, NumberStyles.Integer, CultureInfo.InvariantCulture), ResultType.Integer);
            case '$':
                var length = int.Parse(payload, NumberStyles.Integer, CultureInfo.InvariantCulture);
                if (length < 0)
                {
                    return RedisResult.Create(RedisValue.Null, ResultType.BulkString);
                }

                var bytes = new byte[length + 2];
                await stream.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
                return RedisResult.Create((RedisValue)bytes.AsSpan(0, length).ToArray(), ResultType.BulkString);
            case '*':
                var count = int.Parse(payload, NumberStyles.Integer, CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return RedisResult.Create(RedisValue.Null, ResultType.Array);
                }

                var items = new RedisResult[count];
                for (var i = 0; i < count; i++)
                {
                    items[i] = await ReadReplyAsync(stream, cancellationToken).ConfigureAwait(false)
                        ?? throw new IOException("The server closed the connection in the middle of a reply.");
                }

                return RedisResult.Create(items, ResultType.Array);
            default:
                throw new IOException("Unexpected RESP reply: " + line);
        }
    }

    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false) == 0)
            {
                return bytes.Count == 0 ? null : throw new IOException("The server closed the connection in the middle of a reply.");
            }

            if (one[0] == '\n' && bytes.Count > 0 && bytes[^1] == '\r')
            {
                return Encoding.UTF8.GetString(bytes.ToArray(), 0, bytes.Count - 1);
            }

            bytes.Add(one[0]);
        }
    }

    private async Task<Stream> EnsureOpenAsync(CancellationToken cancellationToken)
    {
        if (_stream is { } open)
        {
            return open;
        }

        var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        try
        {
            await client.ConnectAsync(_endPoint, cancellationToken).ConfigureAwait(false);
            var stream = new BufferedStream(client.GetStream());
            if (_password is not null)
            {
                await WriteCommandAsync(stream, "AUTH", [_password], cancellationToken).ConfigureAwait(false);
                _ = await ReadReplyAsync(stream, cancellationToken).ConfigureAwait(false) ?? throw new IOException("The server closed the connection.");
            }

            await WriteCommandAsync(stream, "CLIENT", ["SETNAME", RedisServer.AdminClientName], cancellationToken).ConfigureAwait(false);
            _ = await ReadReplyAsync(stream, cancellationToken).ConfigureAwait(false) ?? throw new IOException("The server closed the connection.");
            _client = client;
            _stream = stream;
            return stream;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private void Close()
    {
        _stream?.Dispose();
        _client?.Dispose();
        _stream = null;
        _client = null;
    }
}
