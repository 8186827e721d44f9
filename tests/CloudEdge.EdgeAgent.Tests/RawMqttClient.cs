using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudEdge.Mqtt;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>A bare MQTT peer on our codec: every packet sent and received is visible to the test.</summary>
internal sealed class RawMqttClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly MqttProtocolVersion _version;
    private ushort _packetId;

    private RawMqttClient(Socket socket, Stream stream, MqttProtocolVersion version)
    {
        _socket = socket;
        _reader = PipeReader.Create(stream);
        _writer = PipeWriter.Create(stream);
        _version = version;
    }

    public static async Task<RawMqttClient> ConnectAsync(int port, string clientId, string userName, string password, MqttProtocolVersion version = MqttProtocolVersion.V500, System.Net.Security.SslClientAuthenticationOptions? tls = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (tls is not null)
        {
            var ssl = new System.Net.Security.SslStream(stream);
            await ssl.AuthenticateAsClientAsync(tls);
            stream = ssl;
        }
        var client = new RawMqttClient(socket, stream, version);
        await client.SendAsync(new MqttConnectPacket { ClientId = clientId, ProtocolVersion = version, UserName = userName, Password = Encoding.UTF8.GetBytes(password), KeepAlive = 0 });
        var ack = Assert.IsType<MqttConnAckPacket>(await client.ReceiveAsync());
        Assert.Equal(MqttReasonCode.Success, ack.ReasonCode);
        return client;
    }

    /// <summary>Publishes at QoS 1 and returns the PUBACK's reason code.</summary>
    public async Task<MqttReasonCode> PublishAsync(string topic, string payload, string? traceParent = null)
    {
        var id = ++_packetId;
        var properties = traceParent is null ? null : new MqttProperties { UserProperties = [new MqttUserProperty("traceparent", traceParent)] };
        await SendAsync(new MqttPublishPacket
        {
            Topic = topic,
            Payload = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)),
            QoS = MqttQualityOfService.AtLeastOnce,
            PacketId = id,
            Properties = properties,
        });
        var ack = Assert.IsType<MqttPubAckPacket>(await ReceiveAsync());
        Assert.Equal(id, ack.PacketId);
        return ack.ReasonCode;
    }

    private async Task SendAsync(MqttPacket packet)
    {
        MqttPacketWriter.Write(_writer, packet, _version);
        await _writer.FlushAsync();
    }

    private async Task<MqttPacket> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Wait.Long);
        while (true)
        {
            var result = await _reader.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            if (MqttPacketReader.TryRead(ref buffer, _version, MqttPacketReader.ProtocolMaximumPacketSize, out var packet))
            {
                _reader.AdvanceTo(buffer.Start);
                return packet;
            }
            if (result.IsCompleted) throw new EndOfStreamException("The broker closed the connection.");
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await SendAsync(new MqttDisconnectPacket());
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
        await _reader.CompleteAsync();
        await _writer.CompleteAsync();
        _socket.Dispose();
    }
}
