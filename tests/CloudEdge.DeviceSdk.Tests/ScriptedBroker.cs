using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using CloudEdge.Mqtt;
using Wire = CloudEdge.Mqtt;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>
/// A broker the test drives packet by packet over real loopback TCP, for protocol situations mosquitto cannot be
/// made to produce on demand (a PUBREC then a dropped link, a malformed packet, a duplicate QoS 2 delivery). It speaks
/// through our broker's codec; the client under test speaks through MQTTnet, so every check is of the wire.
/// </summary>
internal sealed class ScriptedBroker : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public ScriptedBroker()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
    }

    public int Port { get; }

    public async Task<ScriptedSession> AcceptAsync(Wire.MqttProtocolVersion version = Wire.MqttProtocolVersion.V500)
    {
        using var timeout = new CancellationTokenSource(Wait.Long);
        var socket = await _listener.AcceptSocketAsync(timeout.Token);
        return new ScriptedSession(socket, version);
    }

    public ValueTask DisposeAsync()
    {
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}

internal sealed class ScriptedSession : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Wire.MqttProtocolVersion _version;

    public ScriptedSession(Socket socket, Wire.MqttProtocolVersion version)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream);
        _writer = PipeWriter.Create(_stream);
        _version = version;
    }

    /// <summary>The next packet from the client, with any PUBLISH payload copied out of the pipe.</summary>
    public async Task<MqttPacket> ReadAsync()
    {
        using var timeout = new CancellationTokenSource(Wait.Long);
        while (true)
        {
            var result = await _reader.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            if (MqttPacketReader.TryRead(ref buffer, _version, MqttPacketReader.ProtocolMaximumPacketSize, out var packet))
            {
                if (packet is MqttPublishPacket p) p.Payload = new System.Buffers.ReadOnlySequence<byte>(p.Payload.ToArray());
                _reader.AdvanceTo(buffer.Start);
                return packet;
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) throw new EndOfStreamException("The client closed the connection.");
        }
    }

    public async Task<T> ReadAsync<T>() where T : MqttPacket
    {
        var packet = await ReadAsync();
        return packet as T ?? throw new Xunit.Sdk.XunitException($"Expected {typeof(T).Name}, got {packet.Type}.");
    }

    public async Task SendAsync(MqttPacket packet)
    {
        MqttPacketWriter.Write(_writer, packet, _version);
        await _writer.FlushAsync();
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>CONNECT in, CONNACK out.</summary>
    public async Task<MqttConnectPacket> HandshakeAsync(bool sessionPresent = false, MqttProperties? properties = null)
    {
        var connect = await ReadAsync<MqttConnectPacket>();
        await SendAsync(new MqttConnAckPacket { SessionPresent = sessionPresent, ReasonCode = Wire.MqttReasonCode.Success, Properties = properties });
        return connect;
    }

    /// <summary>RST: the client sees the link die without a DISCONNECT.</summary>
    public void Abort()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public void Dispose() => _stream.Dispose();
}
