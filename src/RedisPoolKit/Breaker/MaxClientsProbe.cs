using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RedisPoolKit;

/// <summary>What one raw probe socket saw.</summary>
internal enum ProbeOutcome
{
    /// <summary>The server wrote the max-clients error (plain or cluster text).</summary>
    MaxClients,
    /// <summary>TCP was accepted, then closed before anything was written: a full server over TLS, or one shutting down.</summary>
    ClosedWithoutReply,
    /// <summary>TCP was accepted and the server waited for us to speak: it has a free slot.</summary>
    Silent,
    /// <summary>The server answered a line that is not the max-clients error (<c>+PONG</c>, <c>-NOAUTH ...</c>): it granted a slot.</summary>
    Replied,
    /// <summary>Nothing listens on the port.</summary>
    Refused,
    /// <summary>The connect or the reply did not come within the deadline.</summary>
    TimedOut,
    /// <summary>The host or network is unreachable, or the name does not resolve.</summary>
    Unreachable,
    /// <summary>Any other socket error.</summary>
    Failed,
}

/// <summary>The outcome of a probe, with the server's first line or the socket error for messages.</summary>
internal readonly record struct ProbeResult(ProbeOutcome Outcome, string? FirstLine = null, string? Error = null)
{
    public bool IsConnectFailure => Outcome is ProbeOutcome.Refused or ProbeOutcome.TimedOut or ProbeOutcome.Unreachable;

    public string Describe() => Outcome switch
    {
        ProbeOutcome.MaxClients or ProbeOutcome.Replied => $"answered '{FirstLine}'",
        ProbeOutcome.ClosedWithoutReply => "accepted TCP and closed it before writing anything",
        ProbeOutcome.Silent => "accepted a probe socket and waited for a command (it has free slots)",
        ProbeOutcome.Refused => "refused the connection",
        ProbeOutcome.TimedOut => "did not answer within the probe deadline",
        ProbeOutcome.Unreachable => $"is unreachable ({Error})",
        _ => $"failed the probe socket ({Error})",
    };
}

/// <summary>The raw sockets the breaker uses to learn what StackExchange.Redis hides; faked in unit tests.</summary>
internal interface IMaxClientsProbe
{
    /// <summary>Connects and reads the server's first line without sending anything.</summary>
    Task<ProbeResult> ReadGreetingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Connects, sends an inline <c>PING</c> and reads the first line of the answer.</summary>
    Task<ProbeResult> PingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>
/// A plain TCP socket, outside StackExchange.Redis (the breaker takes its slot in the budget of the node it goes to
/// first, see <see cref="ConnectionBudget.NodeBudget.TakeProbeSlot"/>): a full server accepts it, writes
/// <c>-ERR max number of clients reached</c> unprompted and closes, which is exactly the text the pool cannot
/// otherwise see.
/// </summary>
internal sealed class MaxClientsProbe : IMaxClientsProbe
{
    // A full server writes its error as soon as it accepts, so the line arrives about one round trip after the
    // connect: waiting a few connect times (with a floor for scheduling noise) is enough to call a silent server free.
    private static readonly TimeSpan s_minGreetingWindow = TimeSpan.FromMilliseconds(200);
    private const int GreetingWindowPerConnectTime = 4;
    private const int MaxLineLength = 256;
    private static readonly byte[] s_ping = "PING\r\n"u8.ToArray();

    private readonly TimeProvider _timeProvider;

    public MaxClientsProbe(TimeProvider timeProvider) => _timeProvider = timeProvider;

    internal static bool IsMaxClientsError(string line) =>
        line.StartsWith("-ERR max number of clients", StringComparison.Ordinal);

    public Task<ProbeResult> ReadGreetingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(endPoint, timeout, sendPing: false, cancellationToken);

    public Task<ProbeResult> PingAsync(EndPoint endPoint, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(endPoint, timeout, sendPing: true, cancellationToken);

    private async Task<ProbeResult> RunAsync(EndPoint endPoint, TimeSpan timeout, bool sendPing, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var started = _timeProvider.GetTimestamp();
        try
        {
            await socket.ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ProbeResult(ProbeOutcome.TimedOut);
        }
        catch (SocketException ex)
        {
            return FromConnectError(ex);
        }

        if (sendPing)
        {
            try
            {
                await socket.SendAsync(s_ping, SocketFlags.None, linked.Token).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                // A full server may have closed already; its error line can still be in our receive buffer.
            }

            return await ReadLineAsync(socket, ProbeOutcome.TimedOut, cancellationToken, linked.Token).ConfigureAwait(false);
        }

        var connectTime = _timeProvider.GetElapsedTime(started);
        var window = TimeSpan.FromTicks(Math.Max(s_minGreetingWindow.Ticks, connectTime.Ticks * GreetingWindowPerConnectTime));
        using var greeting = new CancellationTokenSource(window, _timeProvider);
        using var greetingLinked = CancellationTokenSource.CreateLinkedTokenSource(linked.Token, greeting.Token);
        return await ReadLineAsync(socket, ProbeOutcome.Silent, cancellationToken, greetingLinked.Token).ConfigureAwait(false);
    }

    private static async Task<ProbeResult> ReadLineAsync(Socket socket, ProbeOutcome silentMeans, CancellationToken callerToken, CancellationToken token)
    {
        var buffer = new byte[MaxLineLength];
        var length = 0;
        try
        {
            while (length < buffer.Length)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                length += read;
                if (Array.IndexOf(buffer, (byte)'\n', 0, length) >= 0)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!callerToken.IsCancellationRequested)
        {
            if (length == 0)
            {
                return new ProbeResult(silentMeans);
            }
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown)
        {
            if (length == 0)
            {
                return new ProbeResult(ProbeOutcome.ClosedWithoutReply, Error: ex.SocketErrorCode.ToString());
            }
        }
        catch (SocketException ex)
        {
            return new ProbeResult(ProbeOutcome.Failed, Error: ex.SocketErrorCode.ToString());
        }

        if (length == 0)
        {
            return new ProbeResult(ProbeOutcome.ClosedWithoutReply);
        }

        var line = Encoding.ASCII.GetString(buffer, 0, length).Split('\n')[0].TrimEnd('\r');
        return new ProbeResult(IsMaxClientsError(line) ? ProbeOutcome.MaxClients : ProbeOutcome.Replied, FirstLine: line);
    }

    private static ProbeResult FromConnectError(SocketException ex) => ex.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => new ProbeResult(ProbeOutcome.Refused, Error: ex.SocketErrorCode.ToString()),
        SocketError.TimedOut => new ProbeResult(ProbeOutcome.TimedOut, Error: ex.SocketErrorCode.ToString()),
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData or SocketError.HostDown
            => new ProbeResult(ProbeOutcome.Unreachable, Error: ex.SocketErrorCode.ToString()),
        _ => new ProbeResult(ProbeOutcome.Failed, Error: ex.SocketErrorCode.ToString()),
    };
}
