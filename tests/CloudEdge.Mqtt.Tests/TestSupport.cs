using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Mqtt.Tests;

internal static class TestBroker
{
    public static Task<MqttServer> StartAsync(Action<MqttBrokerOptions>? configure = null, Action<IServiceCollection>? services = null, MqttServerOptions? server = null)
    {
        server ??= new MqttServerOptions();
        server.TcpEndPoint ??= new IPEndPoint(IPAddress.Loopback, 0);
        if (server.TcpEndPoint.Port == 1883) server.TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
        return MqttServer.StartAsync(server, o =>
        {
            o.AllowAnonymous = true;
            configure?.Invoke(o);
        }, services);
    }

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Polls a condition until it holds (CI machines are slow; no fixed sleeps).</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>A test peer speaking raw MQTT through our codec, so tests see every byte the broker sends.</summary>
internal sealed class RawClient : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    private RawClient(Stream stream, MqttProtocolVersion version)
    {
        _stream = stream;
        _reader = PipeReader.Create(stream);
        _writer = PipeWriter.Create(stream);
        Version = version;
    }

    public MqttProtocolVersion Version { get; }

    public static async Task<RawClient> OpenAsync(int port, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return new RawClient(new NetworkStream(socket, ownsSocket: true), version);
    }

    public static async Task<RawClient> OpenTlsAsync(int port, SslClientAuthenticationOptions tls, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await ssl.AuthenticateAsClientAsync(tls);
        return new RawClient(ssl, version);
    }

    /// <summary>Opens a connection, sends CONNECT and returns the client with its CONNACK.</summary>
    public static async Task<(RawClient Client, MqttConnAckPacket Ack)> ConnectAsync(int port, MqttConnectPacket connect)
    {
        var client = await OpenAsync(port, connect.ProtocolVersion);
        await client.SendAsync(connect);
        var ack = await client.ReceiveAsync<MqttConnAckPacket>();
        return (client, ack);
    }

    public static async Task<RawClient> ConnectOkAsync(int port, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true, MqttProperties? properties = null, MqttWillMessage? will = null, ushort keepAlive = 0)
    {
        var (client, ack) = await ConnectAsync(port, new MqttConnectPacket { ClientId = clientId, ProtocolVersion = version, CleanStart = cleanStart, Properties = properties, Will = will, KeepAlive = keepAlive });
        Assert.Equal(MqttReasonCode.Success, ack.ReasonCode);
        return client;
    }

    public async Task SendAsync(MqttPacket packet)
    {
        await _writeLock.WaitAsync();
        try
        {
            MqttPacketWriter.Write(_writer, packet, Version);
            await _writer.FlushAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _writer.WriteAsync(bytes);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<T> ReceiveAsync<T>(TimeSpan? timeout = null) where T : MqttPacket
    {
        var packet = await ReceiveAsync(timeout);
        return packet as T ?? throw new Xunit.Sdk.XunitException($"Expected {typeof(T).Name}, received {packet?.GetType().Name ?? "end of stream"}.");
    }

    /// <summary>The next packet, or null when the broker closed the connection.</summary>
    public async Task<MqttPacket?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TestBroker.Timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _reader.ReadAsync(cts.Token);
            }
            catch (IOException)
            {
                return null;
            }
            var buffer = result.Buffer;
            if (MqttPacketReader.TryRead(ref buffer, Version, int.MaxValue, out var packet))
            {
                if (packet is MqttPublishPacket publish) publish.Payload = new ReadOnlySequence<byte>(publish.Payload.ToArray());
                _reader.AdvanceTo(buffer.Start);
                return packet;
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    /// <summary>Asserts that nothing arrives for a while (used only to prove a negative after a positive control).</summary>
    public async Task<MqttPacket?> TryReceiveAsync(TimeSpan wait)
    {
        try
        {
            return await ReceiveAsync(wait);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Reads until the broker closes the connection; returns what arrived before.</summary>
    public async Task<List<MqttPacket>> ReadUntilClosedAsync(TimeSpan? timeout = null)
    {
        var packets = new List<MqttPacket>();
        while (await ReceiveAsync(timeout) is { } packet) packets.Add(packet);
        return packets;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _reader.CompleteAsync();
            await _writer.CompleteAsync();
        }
        catch (IOException)
        {
        }
        await _stream.DisposeAsync();
    }
}
