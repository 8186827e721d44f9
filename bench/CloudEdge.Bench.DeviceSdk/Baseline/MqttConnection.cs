using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using CloudEdge.Mqtt;

namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>What a connection hands to its owner; called from the connection's read and write loops.</summary>
internal interface IMqttConnectionOwner
{
    /// <summary>Every packet except PINGRESP and DISCONNECT. A PUBLISH payload must be copied before the first await.
    /// An incomplete task pauses reading (and the half-open check, since the pause is ours, not the network's).</summary>
    ValueTask OnPacketAsync(MqttConnection connection, MqttPacket packet);

    /// <summary>A QoS 0 publish reached the socket (flushed).</summary>
    void OnPublishWritten(PendingPublish publish);

    /// <summary>A QoS 0 publish was still queued when the connection closed.</summary>
    void OnPublishNotWritten(PendingPublish publish);
}

/// <summary>One item for the single writer loop: a ready packet, or a publish built at write time (topic alias state lives here).</summary>
internal readonly record struct Outbound(MqttPacket? Packet, PendingPublish? Publish, ushort PacketId, bool Dup, TaskCompletionSource? Flushed);

internal sealed record DisconnectInfo(MqttDisconnectReason Reason, MqttReasonCode? ReasonCode, string? ReasonString, Exception? Exception);

/// <summary>
/// One network connection: TCP or TLS under System.IO.Pipelines, CONNECT/CONNACK, then three loops: read (decode
/// and hand packets to the owner), write (one writer, batches flushes), keep-alive (PINGREQ and half-open detection).
/// Session state is the owner's; a connection only knows this socket's limits and topic aliases.
/// </summary>
internal sealed class MqttConnection
{
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly IMqttConnectionOwner _owner;
    private readonly TimeProvider _time;
    private readonly Channel<Outbound> _outbound = Channel.CreateUnbounded<Outbound>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource<DisconnectInfo> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _maximumIncomingPacketSize;
    private readonly bool _useTopicAliases;
    private readonly Dictionary<string, ushort> _topicAliases = new(StringComparer.Ordinal);
    private long _lastReceived;
    private long _lastSent;
    private long _lastPing;
    private volatile bool _readPaused;
    private int _closing;

    private MqttConnection(Stream stream, PipeReader reader, PipeWriter writer, IMqttConnectionOwner owner, TimeProvider time,
        MqttClientOptions options, MqttConnAckPacket ack, string clientId)
    {
        _stream = stream;
        _reader = reader;
        _writer = writer;
        _owner = owner;
        _time = time;
        Version = options.ProtocolVersion;
        _maximumIncomingPacketSize = (int)Math.Min(options.MaximumPacketSize ?? uint.MaxValue, MqttPacketReader.ProtocolMaximumPacketSize);
        var p = ack.Properties;
        KeepAlive = TimeSpan.FromSeconds(p?.ServerKeepAlive ?? options.KeepAliveSeconds);
        ReceiveMaximum = p?.ReceiveMaximum ?? ushort.MaxValue;
        MaximumPacketSize = (int)Math.Min(p?.MaximumPacketSize ?? uint.MaxValue, MqttPacketReader.ProtocolMaximumPacketSize);
        TopicAliasMaximum = p?.TopicAliasMaximum ?? 0;
        _useTopicAliases = options.UseTopicAliases && TopicAliasMaximum > 0;
        MaximumQoS = p?.MaximumQoS ?? MqttQualityOfService.ExactlyOnce;
        RetainAvailable = p?.RetainAvailable ?? true;
        Result = new MqttConnectResult(ack.SessionPresent, ack.ReasonCode, p?.AssignedClientIdentifier ?? clientId, KeepAlive,
            ReceiveMaximum, (uint)MaximumPacketSize, TopicAliasMaximum, MaximumQoS, RetainAvailable);
        var now = time.GetTimestamp();
        _lastReceived = now;
        _lastSent = now;
        _lastPing = now;
    }

    public MqttProtocolVersion Version { get; }
    public TimeSpan KeepAlive { get; }
    public ushort ReceiveMaximum { get; }
    public int MaximumPacketSize { get; }
    public ushort TopicAliasMaximum { get; }
    public MqttQualityOfService MaximumQoS { get; }
    public bool RetainAvailable { get; }
    public MqttConnectResult Result { get; }

    /// <summary>Completes once, when the connection is closed for any reason.</summary>
    public Task<DisconnectInfo> Closed => _closed.Task;

    /// <summary>Opens the transport, sends CONNECT and waits for a successful CONNACK. Loops start with <see cref="Start"/>.</summary>
    public static async Task<MqttConnection> OpenAsync(MqttClientOptions options, bool cleanStart, IMqttConnectionOwner owner, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(options.ConnectTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var token = linked.Token;
        Stream? stream = null;
        try
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(options.Host, options.EffectivePort, token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls is { Enabled: true } tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(CreateSslOptions(options, tls), token).ConfigureAwait(false);
            }

            var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
            var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
            MqttPacketWriter.Write(writer, CreateConnect(options, cleanStart), options.ProtocolVersion);
            await writer.FlushAsync(token).ConfigureAwait(false);

            var maximum = (int)Math.Min(options.MaximumPacketSize ?? uint.MaxValue, MqttPacketReader.ProtocolMaximumPacketSize);
            while (true)
            {
                var result = await reader.ReadAsync(token).ConfigureAwait(false);
                var buffer = result.Buffer;
                MqttPacket? packet = null;
                try
                {
                    MqttPacketReader.TryRead(ref buffer, options.ProtocolVersion, maximum, out packet);
                }
                finally
                {
                    // After CONNACK the rest of the buffer (a session's queued PUBLISHes, say) is not examined yet:
                    // the read loop must see it without waiting for more bytes.
                    if (packet is null) reader.AdvanceTo(buffer.Start, buffer.End);
                    else reader.AdvanceTo(buffer.Start);
                }
                if (packet is MqttConnAckPacket ack)
                {
                    if (ack.ReasonCode.IsError()) throw new MqttConnectException(ack.ReasonCode, ack.Properties?.ReasonString);
                    return new MqttConnection(stream, reader, writer, owner, time, options, ack, options.ClientId);
                }
                if (packet is MqttDisconnectPacket disconnect)
                {
                    throw new MqttConnectException(disconnect.ReasonCode, disconnect.Properties?.ReasonString);
                }
                if (packet is not null)
                {
                    throw new MqttConnectException($"The server sent {packet.Type} before CONNACK.", null);
                }
                if (result.IsCompleted) throw new MqttConnectException("The server closed the connection before CONNACK.", null);
            }
        }
        catch (Exception e)
        {
            if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
            if (e is MqttConnectException) throw;
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested) throw;
            if (e is OperationCanceledException) throw new MqttConnectException($"No CONNACK from {options.Host}:{options.EffectivePort} within {options.ConnectTimeout}.", e);
            throw new MqttConnectException($"Could not connect to {options.Host}:{options.EffectivePort}: {e.Message}", e);
        }
    }

    private static SslClientAuthenticationOptions CreateSslOptions(MqttClientOptions options, MqttTlsOptions tls)
    {
        var ssl = new SslClientAuthenticationOptions
        {
            TargetHost = tls.TargetHost ?? options.Host,
            EnabledSslProtocols = tls.EnabledProtocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (tls.ClientCertificate is { } client) ssl.ClientCertificates = new X509CertificateCollection { client };
        if (tls.ServerCertificateValidation is { } callback)
        {
            ssl.RemoteCertificateValidationCallback = callback;
        }
        else if (tls.TrustedCa is { } ca)
        {
            // A private CA replaces the system store; host name checks still apply (SslStream checks TargetHost).
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.Add(ca);
            ssl.CertificateChainPolicy = policy;
        }
        return ssl;
    }

    private static MqttConnectPacket CreateConnect(MqttClientOptions options, bool cleanStart)
    {
        var v5 = options.ProtocolVersion == MqttProtocolVersion.V500;
        var connect = new MqttConnectPacket
        {
            ProtocolVersion = options.ProtocolVersion,
            ClientId = options.ClientId,
            CleanStart = cleanStart,
            KeepAlive = options.KeepAliveSeconds,
            UserName = options.UserName,
        };
        // Assigned separately: a null byte[] would convert to an empty (present) ReadOnlyMemory.
        if (options.Password is { } password) connect.Password = System.Text.Encoding.UTF8.GetBytes(password);
        if (v5)
        {
            var properties = new MqttProperties();
            if (options.SessionExpiryInterval != 0) properties.SessionExpiryInterval = options.SessionExpiryInterval;
            if (options.MaximumPacketSize is { } max) properties.MaximumPacketSize = max;
            // Receive Maximum bounds what the server may have in flight towards us: the inbox size is the natural bound.
            properties.ReceiveMaximum = (ushort)Math.Min(options.InboxCapacity, ushort.MaxValue);
            connect.Properties = properties;
        }
        if (options.Will is { } will)
        {
            connect.Will = new MqttWillMessage
            {
                Topic = will.Topic,
                Payload = will.Payload,
                QoS = will.QoS,
                Retain = will.Retain,
                Properties = v5 ? MqttClient.BuildProperties(will, null, null, willDelay: options.WillDelayInterval) : null,
            };
        }
        return connect;
    }

    public void Start()
    {
        _ = ReadLoopAsync();
        _ = WriteLoopAsync();
        if (KeepAlive > TimeSpan.Zero) _ = KeepAliveLoopAsync();
    }

    /// <summary>Queues a packet for the writer; false once the connection is closing.</summary>
    public bool Send(Outbound item) => _outbound.Writer.TryWrite(item);

    public bool Send(MqttPacket packet) => _outbound.Writer.TryWrite(new Outbound(packet, null, 0, false, null));

    /// <summary>Sends <paramref name="packet"/> (normally DISCONNECT), waits briefly for it to reach the socket, then closes.</summary>
    public async Task SendAndCloseAsync(MqttPacket packet, DisconnectInfo info, CancellationToken cancellationToken)
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Send(new Outbound(packet, null, 0, false, flushed)))
        {
            try
            {
                await flushed.Task.WaitAsync(TimeSpan.FromSeconds(2), _time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException or MqttClientException)
            {
                // Closing anyway: the packet was a courtesy to the server.
            }
        }
        Close(info);
    }

    public void Close(DisconnectInfo info)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        _outbound.Writer.TryComplete();
        try
        {
            _cts.Cancel();
        }
        catch (AggregateException)
        {
            // A registration threw while cancelling; the connection is closing regardless.
        }
        try
        {
            _stream.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            // The transport is already broken; nothing more to release.
        }
        DrainUnwritten();
        _closed.TrySetResult(info);
    }

    private void DrainUnwritten()
    {
        while (_outbound.Reader.TryRead(out var item)) Abandon(item);
    }

    private void Abandon(Outbound item)
    {
        item.Flushed?.TrySetException(new MqttClientException("The connection closed before the packet was written."));
        if (item.Publish is { } publish && publish.Message.QoS == MqttQualityOfService.AtMostOnce) _owner.OnPublishNotWritten(publish);
    }

    private async Task ReadLoopAsync()
    {
        var token = _cts.Token;
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(token).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (MqttPacketReader.TryRead(ref buffer, Version, _maximumIncomingPacketSize, out var packet))
                    {
                        Volatile.Write(ref _lastReceived, _time.GetTimestamp());
                        switch (packet)
                        {
                            case MqttPingRespPacket:
                                continue;
                            case MqttDisconnectPacket disconnect:
                                Close(new DisconnectInfo(MqttDisconnectReason.ServerDisconnected, disconnect.ReasonCode, disconnect.Properties?.ReasonString, null));
                                return;
                            case MqttConnAckPacket:
                                throw new MqttProtocolException(MqttReasonCode.ProtocolError, "A second CONNACK.");
                        }
                        var handled = _owner.OnPacketAsync(this, packet);
                        if (handled.IsCompletedSuccessfully) continue;
                        _readPaused = true;
                        try
                        {
                            await handled.ConfigureAwait(false);
                        }
                        finally
                        {
                            _readPaused = false;
                            Volatile.Write(ref _lastReceived, _time.GetTimestamp());
                        }
                    }
                }
                finally
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (result.IsCompleted)
                {
                    Close(new DisconnectInfo(MqttDisconnectReason.TransportClosed, null, "The server closed the connection.", null));
                    return;
                }
            }
        }
        catch (MqttProtocolException e)
        {
            var info = new DisconnectInfo(MqttDisconnectReason.ProtocolError, e.ReasonCode, e.Message, e);
            if (Version == MqttProtocolVersion.V500) await SendAndCloseAsync(new MqttDisconnectPacket { ReasonCode = e.ReasonCode }, info, CancellationToken.None).ConfigureAwait(false);
            else Close(info);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Closed by someone else; their DisconnectInfo stands.
        }
        catch (Exception e)
        {
            Close(new DisconnectInfo(MqttDisconnectReason.TransportClosed, null, e.Message, e));
        }
        finally
        {
            await CompleteQuietlyAsync(_reader.CompleteAsync()).ConfigureAwait(false);
        }
    }

    private async Task WriteLoopAsync()
    {
        var token = _cts.Token;
        var reader = _outbound.Reader;
        var written = new List<Outbound>();
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    written.Add(item);
                    var packet = item.Packet ?? BuildPublish(item);
                    MqttPacketWriter.Write(_writer, packet, Version);
                    if (_writer.UnflushedBytes >= 64 * 1024) break;
                }
                var flush = await _writer.FlushAsync(token).ConfigureAwait(false);
                Volatile.Write(ref _lastSent, _time.GetTimestamp());
                foreach (var item in written)
                {
                    item.Flushed?.TrySetResult();
                    if (item.Publish is { } publish && publish.Message.QoS == MqttQualityOfService.AtMostOnce) _owner.OnPublishWritten(publish);
                }
                written.Clear();
                if (flush.IsCompleted)
                {
                    Close(new DisconnectInfo(MqttDisconnectReason.TransportClosed, null, "The connection can no longer be written.", null));
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Close(new DisconnectInfo(MqttDisconnectReason.TransportClosed, null, e.Message, e));
        }
        finally
        {
            foreach (var item in written) Abandon(item);
            DrainUnwritten();
            await CompleteQuietlyAsync(_writer.CompleteAsync()).ConfigureAwait(false);
        }
    }

    private static async ValueTask CompleteQuietlyAsync(ValueTask completion)
    {
        try
        {
            await completion.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // Returning pooled buffers of a dead stream; anything left unflushed is already accounted as unwritten.
        }
    }

    private MqttPublishPacket BuildPublish(Outbound item)
    {
        var publish = item.Publish!;
        var packet = MqttClient.BuildPublishPacket(publish, item.PacketId, item.Dup, Version);
        if (!_useTopicAliases) return packet;
        // Aliases are per connection and assigned in write order, which is why this happens in the writer.
        if (_topicAliases.TryGetValue(packet.Topic, out var alias))
        {
            var aliased = Aliased(packet, alias, keepTopic: false);
            return MqttPacketWriter.GetSize(aliased, Version) <= MaximumPacketSize ? aliased : packet;
        }
        if (_topicAliases.Count < TopicAliasMaximum)
        {
            var candidate = Aliased(packet, (ushort)(_topicAliases.Count + 1), keepTopic: true);
            if (MqttPacketWriter.GetSize(candidate, Version) <= MaximumPacketSize)
            {
                _topicAliases[packet.Topic] = candidate.Properties!.TopicAlias!.Value;
                return candidate;
            }
        }
        return packet;
    }

    private static MqttPublishPacket Aliased(MqttPublishPacket packet, ushort alias, bool keepTopic)
    {
        var source = packet.Properties;
        return new MqttPublishPacket
        {
            Topic = keepTopic ? packet.Topic : "",
            Payload = packet.Payload,
            QoS = packet.QoS,
            Retain = packet.Retain,
            Dup = packet.Dup,
            PacketId = packet.PacketId,
            Properties = new MqttProperties
            {
                PayloadFormatIndicator = source?.PayloadFormatIndicator,
                MessageExpiryInterval = source?.MessageExpiryInterval,
                ContentType = source?.ContentType,
                ResponseTopic = source?.ResponseTopic,
                CorrelationData = source?.CorrelationData,
                UserProperties = source?.UserProperties,
                TopicAlias = alias,
            },
        };
    }

    /// <summary>
    /// PINGREQ goes out when we have been quiet for 3/4 of the keep-alive (the spec's duty) and also when the server
    /// has been quiet for half of it, so a PINGRESP is always due before 1.5x keep-alive of silence, which is when
    /// the connection is declared half-open and closed.
    /// </summary>
    private async Task KeepAliveLoopAsync()
    {
        var token = _cts.Token;
        var keepAlive = KeepAlive;
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(keepAlive.TotalMilliseconds / 8, 50, 1000));
        try
        {
            while (!token.IsCancellationRequested)
            {
                await Task.Delay(tick, _time, token).ConfigureAwait(false);
                var now = _time.GetTimestamp();
                if (_readPaused) Volatile.Write(ref _lastReceived, now);
                var silentFor = _time.GetElapsedTime(Volatile.Read(ref _lastReceived), now);
                if (silentFor >= keepAlive * 1.5)
                {
                    Close(new DisconnectInfo(MqttDisconnectReason.KeepAliveTimeout, MqttReasonCode.KeepAliveTimeout,
                        $"Nothing received for {silentFor.TotalSeconds:0.0} s (keep-alive {keepAlive.TotalSeconds} s): the connection is half-open.", null));
                    return;
                }
                var quietFor = _time.GetElapsedTime(Volatile.Read(ref _lastSent), now);
                var sincePing = _time.GetElapsedTime(Volatile.Read(ref _lastPing), now);
                if ((quietFor >= keepAlive * 0.75 || silentFor >= keepAlive * 0.5) && sincePing >= keepAlive * 0.5)
                {
                    Volatile.Write(ref _lastPing, now);
                    Send(MqttPingReqPacket.Instance);
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }
}
