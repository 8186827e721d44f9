using System.Net;
using System.Net.Sockets;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>
/// A loopback TCP relay between the client and mosquitto. <see cref="Stall"/> keeps every socket open but
/// forwards nothing more in either direction: to the client the connection is half-open. <see cref="StallUpstream"/>
/// drops only what the client sends, so everything the broker received is still acknowledged. <see cref="Refusing"/>
/// closes new connections at once: the broker is unreachable.
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private volatile bool _stalled;
    private volatile bool _upstreamStalled;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    public int Accepted { get; private set; }

    public void Stall() => _stalled = true;

    public void Resume() => _stalled = _upstreamStalled = false;

    /// <summary>From now on the client's bytes are discarded (not buffered): reset the links before resuming.</summary>
    public void StallUpstream() => _upstreamStalled = true;

    public bool Refusing { get; set; }

    /// <summary>Resets every relayed connection (RST, no FIN): an abnormal close for both ends.</summary>
    public void ResetAll()
    {
        lock (_sockets)
        {
            foreach (var s in _sockets)
            {
                try
                {
                    s.LingerState = new LingerOption(true, 0);
                    s.Close();
                }
                catch (ObjectDisposedException)
                {
                }
            }
            _sockets.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                if (Refusing)
                {
                    client.LingerState = new LingerOption(true, 0);
                    client.Close();
                    continue;
                }
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                }
                catch (SocketException)
                {
                    client.Close();
                    server.Dispose();
                    continue;
                }
                lock (_sockets)
                {
                    _sockets.Add(client);
                    _sockets.Add(server);
                    Accepted++;
                }
                _ = PumpAsync(client, server, upstream: true);
                _ = PumpAsync(server, client, upstream: false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool upstream)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    // A stalled link forwards nothing, not even the FIN: the far end must find out by itself.
                    if (!_stalled) to.Shutdown(SocketShutdown.Send);
                    return;
                }
                if (_stalled || (upstream && _upstreamStalled)) continue;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            if (!_stalled) CloseQuietly(to);
        }
    }

    private static void CloseQuietly(Socket socket)
    {
        try
        {
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        ResetAll();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
