using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using CloudEdge.Mqtt;

namespace CloudEdge.Bench.Mqtt;

/// <summary>A load-generator connection: a raw socket speaking MQTT 5 through our codec.</summary>
internal sealed class BenchConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    private BenchConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        Writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
    }

    public PipeReader Reader { get; }
    public PipeWriter Writer { get; }

    public static async Task<BenchConnection> ConnectAsync(int port, string clientId, ushort receiveMaximum = 1000, CancellationToken token = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, port, token);
        var connection = new BenchConnection(socket);
        await connection.SendAsync(new MqttConnectPacket
        {
            ClientId = clientId,
            CleanStart = true,
            ProtocolVersion = MqttProtocolVersion.V500,
            Properties = new MqttProperties { ReceiveMaximum = receiveMaximum },
        }, token);
        var ack = await connection.ReceiveAsync(token) as MqttConnAckPacket ?? throw new InvalidOperationException("No CONNACK.");
        if (ack.ReasonCode != MqttReasonCode.Success) throw new InvalidOperationException($"CONNACK {ack.ReasonCode}.");
        return connection;
    }

    public async Task SendAsync(MqttPacket packet, CancellationToken token = default)
    {
        await _writeLock.WaitAsync(token);
        try
        {
            MqttPacketWriter.Write(Writer, packet, MqttProtocolVersion.V500);
            await Writer.FlushAsync(token);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes several packets and flushes once.</summary>
    public async Task SendBatchAsync(IEnumerable<MqttPacket> packets, CancellationToken token = default)
    {
        await _writeLock.WaitAsync(token);
        try
        {
            foreach (var packet in packets) MqttPacketWriter.Write(Writer, packet, MqttProtocolVersion.V500);
            await Writer.FlushAsync(token);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<MqttPacket?> ReceiveAsync(CancellationToken token = default)
    {
        while (true)
        {
            var result = await Reader.ReadAsync(token);
            var buffer = result.Buffer;
            if (MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, int.MaxValue, out var packet))
            {
                Reader.AdvanceTo(buffer.Start);
                return packet;
            }
            Reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    /// <summary>Reads packets until cancelled, handing each to <paramref name="onPacket"/> while its buffer is valid.</summary>
    public async Task ReadLoopAsync(Func<MqttPacket, ValueTask> onPacket, CancellationToken token)
    {
        try
        {
            while (true)
            {
                var result = await Reader.ReadAsync(token);
                var buffer = result.Buffer;
                while (MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, int.MaxValue, out var packet)) await onPacket(packet);
                Reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) return;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        await _stream.DisposeAsync();
    }
}
