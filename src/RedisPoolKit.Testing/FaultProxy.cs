using System.Diagnostics;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RedisPoolKit.Testing;

/// <summary>
/// An in-process TCP proxy on 127.0.0.1 that forwards to a target and injects faults on demand:
/// latency, throttled bandwidth, pause, blackhole, reset, close after N bytes, refuse. Every setting can be switched at run
/// time for all connections or only for new ones (<see cref="FaultScope"/>).
/// </summary>
/// <example>
/// <code>
/// await using var proxy = FaultProxy.Start(server.EndPoint);
/// using var mux = await ConnectionMultiplexer.ConnectAsync(proxy.ConnectionString);
/// proxy.Latency = TimeSpan.FromMilliseconds(50);
/// proxy.SetFault(ProxyFault.Blackhole, FaultScope.NewConnections);
/// </code>
/// </example>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<Connection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private Socket? _listener;
    private Policy _newConnections = Policy.Healthy;
    private TaskCompletionSource _listenerChanged = NewSignal();
    private long _accepted;
    private int _active;
    private long _bytesToServer;
    private long _bytesToClient;
    private int _disposed;

    private FaultProxy(EndPoint target)
    {
        Target = target;
        _listener = Listen(0);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Where connections are forwarded.</summary>
    public EndPoint Target { get; }

    /// <summary>The proxy's own endpoint on 127.0.0.1: point clients here.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The proxy's port on 127.0.0.1.</summary>
    public int Port => EndPoint.Port;

    /// <summary>A StackExchange.Redis configuration string for the proxy: <c>127.0.0.1:port</c>. Append options (<c>,password=...</c>) as needed.</summary>
    public string ConnectionString => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>Connections accepted so far, including those reset or blackholed at once.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections currently open through the proxy.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>Bytes forwarded from clients to the target.</summary>
    public long BytesToServer => Interlocked.Read(ref _bytesToServer);

    /// <summary>Bytes forwarded from the target to clients.</summary>
    public long BytesToClient => Interlocked.Read(ref _bytesToClient);

    /// <summary>The fault new connections get.</summary>
    public ProxyFault Fault
    {
        get
        {
            lock (_gate)
            {
                return _newConnections.Fault;
            }
        }
    }

    /// <summary>Delay added to every chunk forwarded, in each direction, on all connections (see <see cref="SetLatency"/> for new ones only).</summary>
    /// <value><see cref="TimeSpan.Zero"/> by default.</value>
    public TimeSpan Latency
    {
        get
        {
            lock (_gate)
            {
                return _newConnections.Latency;
            }
        }

        set => SetLatency(value, FaultScope.AllConnections);
    }

    /// <summary>Starts a proxy to <paramref name="target"/> on a free loopback port.</summary>
    public static FaultProxy Start(EndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return new FaultProxy(target);
    }

    /// <summary>Switches the fault for the given connections. <see cref="ProxyFault.None"/> clears it.</summary>
    public void SetFault(ProxyFault fault, FaultScope scope = FaultScope.AllConnections)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Update(p => p with { Fault = fault }, scope);
        lock (_gate)
        {
            if (fault == ProxyFault.Refuse && _listener is not null)
            {
                _listener.Dispose();
                _listener = null;
                SignalListenerChanged();
            }
            else if (fault != ProxyFault.Refuse && _listener is null)
            {
                // Same port again, so clients configured with the proxy's endpoint reconnect once it stops refusing.
                _listener = Listen(Port);
                SignalListenerChanged();
            }
        }
    }

    /// <summary>Sets the delay added to every chunk forwarded, in each direction.</summary>
    public void SetLatency(TimeSpan latency, FaultScope scope = FaultScope.AllConnections)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latency, TimeSpan.Zero);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Update(p => p with { Latency = latency }, scope);
    }

    /// <summary>
    /// Throttles every connection to about <paramref name="bytesPerSecond"/> in each direction: data is forwarded in
    /// slices of a twentieth of a second's worth, each followed by a pause. <c>0</c> removes the limit.
    /// </summary>
    public void SetBandwidth(long bytesPerSecond, FaultScope scope = FaultScope.AllConnections)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Update(p => p with { BytesPerSecond = bytesPerSecond == 0 ? null : bytesPerSecond }, scope);
    }

    /// <summary>
    /// Delivers exactly <paramref name="bytes"/> more bytes from the server to each client (counted from now for
    /// existing connections, from the start for new ones), then closes that connection with a FIN.
    /// </summary>
    public void CloseAfter(long bytes, FaultScope scope = FaultScope.AllConnections)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Update(p => p with { CloseAfterBytes = bytes }, scope);
    }

    /// <summary>Clears every fault, latency, bandwidth and close-after limit, for all connections.</summary>
    public void Heal()
    {
        SetFault(ProxyFault.None);
        Update(_ => Policy.Healthy, FaultScope.AllConnections);
    }

    /// <summary>Aborts every current connection with a TCP RST; new connections are unaffected.</summary>
    public void ResetConnections()
    {
        foreach (var connection in _connections.Keys)
        {
            connection.Abort();
        }
    }

    /// <summary>The proxy's settings and counters, for test output.</summary>
    public override string ToString()
    {
        Policy policy;
        lock (_gate)
        {
            policy = _newConnections;
        }

        return string.Create(
            CultureInfo.InvariantCulture,
            $"FaultProxy 127.0.0.1:{Port} -> {Target}: fault={policy.Fault}, latency={policy.Latency.TotalMilliseconds:0} ms, bandwidth={policy.BytesPerSecond?.ToString(CultureInfo.InvariantCulture) ?? "unlimited"} B/s, closeAfter={policy.CloseAfterBytes?.ToString(CultureInfo.InvariantCulture) ?? "off"}; accepted={Accepted}, active={Active}, bytesToServer={BytesToServer}, bytesToClient={BytesToClient}");
    }

    /// <summary>Stops listening, aborts every connection and waits for all of its pumps to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _listener?.Dispose();
            _listener = null;
            SignalListenerChanged();
        }

        await _acceptLoop.ConfigureAwait(false);
        foreach (var connection in _connections.Keys)
        {
            connection.Abort();
        }

        await Task.WhenAll(_connections.Keys.Select(c => c.Completion)).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static Socket Listen(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            socket.Listen(512);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void SignalListenerChanged()
    {
        _listenerChanged.TrySetResult();
        _listenerChanged = NewSignal();
    }

    private void Update(Func<Policy, Policy> change, FaultScope scope)
    {
        Connection[] existing;
        lock (_gate)
        {
            _newConnections = change(_newConnections);
            existing = scope == FaultScope.AllConnections ? [.. _connections.Keys] : [];
        }

        foreach (var connection in existing)
        {
            connection.Apply(change(connection.Policy));
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket? listener;
            Task listenerChanged;
            lock (_gate)
            {
                listener = _listener;
                listenerChanged = _listenerChanged.Task;
            }

            if (listener is null)
            {
                await listenerChanged.ConfigureAwait(false);
                continue;
            }

            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                // The listener was closed to refuse connections, or is being disposed.
                continue;
            }

            Interlocked.Increment(ref _accepted);
            client.NoDelay = true;
            Connection connection;
            lock (_gate)
            {
                if (_newConnections.Fault is ProxyFault.Reset or ProxyFault.Refuse || _stopping.IsCancellationRequested)
                {
                    Connection.AbortSocket(client);
                    continue;
                }

                connection = new Connection(this, client, _newConnections);
                _connections[connection] = 0;
                Interlocked.Increment(ref _active);
            }

            connection.Start();
        }
    }

    private sealed record Policy(ProxyFault Fault, TimeSpan Latency, long? CloseAfterBytes, long? BytesPerSecond = null)
    {
        public static readonly Policy Healthy = new(ProxyFault.None, TimeSpan.Zero, null);
    }

    private sealed class Connection
    {
        private const int ChunkSize = 16 * 1024;
        private const int SlicesPerSecond = 20;

        private readonly FaultProxy _proxy;
        private readonly Socket _client;
        private readonly CancellationTokenSource _aborted;
        private readonly Lock _gate = new();
        private Socket? _server;
        private Policy _policy;
        private long _closeAfterRemaining = -1;
        private TaskCompletionSource _policyChanged = NewSignal();
        private bool _upstreamClosed;

        public Connection(FaultProxy proxy, Socket client, Policy policy)
        {
            _proxy = proxy;
            _client = client;
            _policy = policy;
            _closeAfterRemaining = policy.CloseAfterBytes ?? -1;
            _aborted = CancellationTokenSource.CreateLinkedTokenSource(proxy._stopping.Token);
        }

        public Task Completion { get; private set; } = Task.CompletedTask;

        public Policy Policy
        {
            get
            {
                lock (_gate)
                {
                    return _policy;
                }
            }
        }

        public static void AbortSocket(Socket socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
            }

            socket.Dispose();
        }

        public void Start() => Completion = Task.Run(RunAsync);

        public void Apply(Policy policy)
        {
            bool closeNow;
            lock (_gate)
            {
                if (policy.CloseAfterBytes != _policy.CloseAfterBytes)
                {
                    _closeAfterRemaining = policy.CloseAfterBytes ?? -1;
                }

                _policy = policy;
                closeNow = _closeAfterRemaining == 0;
                _policyChanged.TrySetResult();
                _policyChanged = NewSignal();
            }

            if (policy.Fault is ProxyFault.Reset or ProxyFault.Refuse)
            {
                Abort();
            }
            else if (closeNow)
            {
                CloseAfterLimit();
            }
        }

        public void Abort()
        {
            try
            {
                _aborted.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }

            AbortSocket(_client);
            _server?.Dispose();
        }

        private async Task RunAsync()
        {
            try
            {
                if (Policy.Fault != ProxyFault.Blackhole)
                {
                    var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    _server = server;
                    try
                    {
                        await server.ConnectAsync(_proxy.Target, _aborted.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        // The target is down: the client sees what it would see from a dead server, a reset.
                        Abort();
                        return;
                    }
                }

                await Task.WhenAll(PumpAsync(toServer: true), PumpAsync(toServer: false)).ConfigureAwait(false);
            }
            finally
            {
                _client.Dispose();
                _server?.Dispose();
                _proxy._connections.TryRemove(this, out _);
                Interlocked.Decrement(ref _proxy._active);
                _aborted.Dispose();
            }
        }

        private async Task PumpAsync(bool toServer)
        {
            var from = toServer ? _client : _server;
            if (from is null)
            {
                return;
            }

            var buffer = new byte[ChunkSize];
            var token = _aborted.Token;
            try
            {
                while (true)
                {
                    await WhilePausedAsync(token).ConfigureAwait(false);
                    var slice = Policy.BytesPerSecond is { } rate ? (int)Math.Clamp(rate / SlicesPerSecond, 1, ChunkSize) : ChunkSize;
                    var read = await from.ReceiveAsync(buffer.AsMemory(0, slice), token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        OnEndOfStream(toServer);
                        return;
                    }

                    await WhilePausedAsync(token).ConfigureAwait(false);
                    var policy = Policy;
                    if (policy.Fault == ProxyFault.Blackhole || (toServer && (_server is null || _upstreamClosed)))
                    {
                        continue;
                    }

                    if (policy.Latency > TimeSpan.Zero)
                    {
                        // Timers may fire a little early against the monotonic clock; the latency is a promised minimum.
                        var started = Stopwatch.GetTimestamp();
                        for (var left = policy.Latency; left > TimeSpan.Zero; left = policy.Latency - Stopwatch.GetElapsedTime(started))
                        {
                            await Task.Delay(left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left, token).ConfigureAwait(false);
                        }
                    }

                    var count = toServer ? read : TakeAllowance(read);
                    var to = toServer ? _server! : _client;
                    for (var sent = 0; sent < count;)
                    {
                        sent += await to.SendAsync(buffer.AsMemory(sent, count - sent), token).ConfigureAwait(false);
                    }

                    Interlocked.Add(ref toServer ? ref _proxy._bytesToServer : ref _proxy._bytesToClient, count);
                    if (!toServer && TakeBytes(count))
                    {
                        CloseAfterLimit();
                        return;
                    }

                    if (policy.BytesPerSecond is { } bytesPerSecond)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((double)count / bytesPerSecond), token).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                if (!toServer && _upstreamClosed)
                {
                    return;
                }

                // One side failed: the other side learns it the way it would without a proxy, by a reset.
                Abort();
            }
        }

        private void OnEndOfStream(bool toServer)
        {
            var to = toServer ? _server : _client;
            try
            {
                to?.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }

        private int TakeAllowance(int read)
        {
            lock (_gate)
            {
                return _closeAfterRemaining < 0 ? read : (int)Math.Min(read, _closeAfterRemaining);
            }
        }

        /// <summary>Counts delivered bytes against the close-after limit; true when the limit is reached.</summary>
        private bool TakeBytes(int count)
        {
            lock (_gate)
            {
                if (_closeAfterRemaining < 0)
                {
                    return false;
                }

                _closeAfterRemaining = Math.Max(0, _closeAfterRemaining - count);
                return _closeAfterRemaining == 0;
            }
        }

        /// <summary>FIN to the client after the allowed bytes; the upstream is dropped, client bytes are discarded until it closes.</summary>
        private void CloseAfterLimit()
        {
            _upstreamClosed = true;
            _server?.Dispose();
            try
            {
                _client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }

        private Task WhilePausedAsync(CancellationToken token)
        {
            lock (_gate)
            {
                return _policy.Fault == ProxyFault.Pause ? WaitAsync(_policyChanged.Task, token) : Task.CompletedTask;
            }

            async Task WaitAsync(Task changed, CancellationToken cancellationToken)
            {
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
                await WhilePausedAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
