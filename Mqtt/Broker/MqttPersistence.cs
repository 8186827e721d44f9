using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// Group commit of persistent sessions and retained messages to an <see cref="IMqttBrokerStore"/>. Changes only
/// mark a client id or topic dirty (no I/O on the packet path); every <see cref="MqttBrokerOptions.PersistenceFlushInterval"/>
/// the flusher snapshots what is dirty and writes it as one atomic batch. A session record holds the whole
/// session (subscriptions, queued and in-flight messages, received QoS 2 ids), so each record is self-consistent.
/// </summary>
internal sealed class MqttPersistence(MqttBroker broker, IMqttBrokerStore store)
{
    private const byte FormatVersion = 1;
    private readonly ConcurrentDictionary<string, byte> _dirtySessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _dirtyRetained = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _flusher;

    public void SessionChanged(string clientId) => _dirtySessions.TryAdd(clientId, 0);

    public void RetainedChanged(string topic) => _dirtyRetained.TryAdd(topic, 0);

    public Task<MqttStoredState> StoreLoadAsync(CancellationToken cancellationToken) => store.LoadAsync(cancellationToken);

    public void Start() => _flusher ??= Task.Run(FlushLoopAsync);

    /// <summary>Stops the flusher after a last flush (a graceful stop loses nothing).</summary>
    public async Task StopAsync()
    {
        if (_flusher is null) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _flusher.ConfigureAwait(false);
        _flusher = null;
        await FlushAsync().ConfigureAwait(false);
    }

    private async Task FlushLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(broker.Options.PersistenceFlushInterval, broker.Time, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            await FlushAsync().ConfigureAwait(false);
        }
    }

    internal async Task FlushAsync()
    {
        if (_dirtySessions.IsEmpty && _dirtyRetained.IsEmpty) return;
        var writes = new List<MqttStoreWrite>();
        // Retained topics are taken before sessions, so a batch holding a retained change also holds every session
        // change marked before it (a client's PUBREC/PUBACK precedes its next publish).
        foreach (var topic in _dirtyRetained.Keys)
        {
            _dirtyRetained.TryRemove(topic, out _);
            writes.Add(new MqttStoreWrite(MqttStoreRecordKind.Retained, topic, broker.TryGetRetained(topic) is { } message ? EncodeRetained(message) : null));
        }
        foreach (var clientId in _dirtySessions.Keys)
        {
            _dirtySessions.TryRemove(clientId, out _);
            writes.Add(broker.TryGetPersistentSession(clientId) is { } session ? EncodeSession(session) : new MqttStoreWrite(MqttStoreRecordKind.Session, clientId, null));
        }
        try
        {
            await store.WriteAsync(writes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Keep the keys dirty: the next flush writes their then-current state.
            broker.Logger.LogError(e, "MQTT store write of {Count} record(s) failed; retrying at the next flush", writes.Count);
            foreach (var write in writes)
            {
                if (write.Kind == MqttStoreRecordKind.Session) SessionChanged(write.Key);
                else RetainedChanged(write.Key);
            }
        }
    }

    // ---- encoding: a small binary format; messages are stored as MQTT 5 PUBLISH packets through our codec ----

    private MqttStoreWrite EncodeSession(MqttSession session)
    {
        var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        int queued;
        lock (session.Gate)
        {
            w.Write(FormatVersion);
            WriteOptional(w, session.UserName);
            w.Write(session.ExpiryInterval);
            // Wall-clock time of the disconnect (now for a connected session: a crash disconnects it).
            w.Write(session.IsConnected ? broker.Time.GetUtcNow().ToUnixTimeMilliseconds() : ToUnixMilliseconds(session.DisconnectedAt));
            w.Write(session.Subscriptions.Count);
            foreach (var entry in session.Subscriptions.Values)
            {
                w.Write(entry.Filter);
                w.Write((byte)entry.Options.QoS);
                w.Write(entry.Options.NoLocal);
                w.Write(entry.Options.RetainAsPublished);
                w.Write((byte)entry.Options.RetainHandling);
                w.Write(entry.SubscriptionId ?? 0);
                WriteOptional(w, entry.ShareGroup);
            }
            w.Write(session.Inflight.Count);
            foreach (var (id, inflight) in session.Inflight)
            {
                w.Write(id);
                w.Write(inflight.Released);
                WriteDelivery(w, inflight.Delivery);
            }
            w.Write(session.Pending.Count);
            foreach (var delivery in session.Pending) WriteDelivery(w, delivery);
            w.Write(session.IncomingQoS2.Count);
            foreach (var id in session.IncomingQoS2) w.Write(id);
            queued = session.Pending.Count + session.Inflight.Count;
        }
        w.Flush();
        return new MqttStoreWrite(MqttStoreRecordKind.Session, session.ClientId, stream.ToArray(), queued);
    }

    private byte[] EncodeRetained(MqttApplicationMessage message)
    {
        var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        w.Write(FormatVersion);
        WriteMessage(w, message);
        w.Flush();
        return stream.ToArray();
    }

    private void WriteDelivery(BinaryWriter w, MqttDelivery delivery)
    {
        w.Write((byte)delivery.QoS);
        w.Write(delivery.Retain);
        w.Write(delivery.SubscriptionIds?.Count ?? 0);
        foreach (var id in delivery.SubscriptionIds ?? []) w.Write(id);
        WriteMessage(w, delivery.Message);
    }

    private void WriteMessage(BinaryWriter w, MqttApplicationMessage message)
    {
        WriteOptional(w, message.PublisherClientId);
        WriteOptional(w, message.PublisherUserName);
        w.Write(message.ExpiresAt is { } at ? ToUnixMilliseconds(at) : 0L);
        var packet = new ArrayBufferWriter<byte>(message.Payload.Length + message.Topic.Length + 16);
        MqttPacketWriter.Write(packet, new MqttPublishPacket
        {
            Topic = message.Topic,
            Payload = new ReadOnlySequence<byte>(message.Payload),
            QoS = message.QoS,
            PacketId = message.QoS > 0 ? (ushort)1 : (ushort)0,
            Retain = message.Retain,
            Properties = message.Properties,
        }, MqttProtocolVersion.V500);
        w.Write(packet.WrittenCount);
        w.Write(packet.WrittenSpan);
    }

    private long ToUnixMilliseconds(long timestamp) =>
        (broker.Time.GetUtcNow() - broker.Time.GetElapsedTime(timestamp)).ToUnixTimeMilliseconds();

    private long FromUnixMilliseconds(long unixMilliseconds)
    {
        var ago = broker.Time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds);
        return broker.Time.GetTimestamp() - (long)(ago.TotalSeconds * broker.Time.TimestampFrequency);
    }

    private static void WriteOptional(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null) w.Write(value);
    }

    private static string? ReadOptional(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;

    // ---- decoding ----

    public MqttSession DecodeSession(string clientId, byte[] bytes, List<(string Inner, MqttSubscriptionEntry Entry)> subscriptions)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        if (r.ReadByte() != FormatVersion) throw new InvalidDataException($"Session {clientId}: unknown record format.");
        var session = new MqttSession(clientId, ReadOptional(r))
        {
            ExpiryInterval = r.ReadUInt32(),
            DisconnectedAt = FromUnixMilliseconds(r.ReadInt64()),
        };
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var filter = r.ReadString();
            var options = new MqttSubscription
            {
                TopicFilter = filter,
                QoS = (MqttQualityOfService)r.ReadByte(),
                NoLocal = r.ReadBoolean(),
                RetainAsPublished = r.ReadBoolean(),
                RetainHandling = (MqttRetainHandling)r.ReadByte(),
            };
            var subscriptionId = r.ReadUInt32();
            var shareGroup = ReadOptional(r);
            var entry = new MqttSubscriptionEntry(session, filter, options, subscriptionId == 0 ? null : subscriptionId, shareGroup);
            session.Subscriptions[filter] = entry;
            MqttTopic.TryParseShared(filter, out _, out var inner, out _);
            subscriptions.Add((inner, entry));
        }
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var id = r.ReadUInt16();
            var released = r.ReadBoolean();
            session.Inflight.Add(id, new MqttInflight(ReadDelivery(r), id) { Released = released });
        }
        for (var i = r.ReadInt32(); i > 0; i--) session.Pending.Enqueue(ReadDelivery(r));
        for (var i = r.ReadInt32(); i > 0; i--) session.IncomingQoS2.Add(r.ReadUInt16());
        return session;
    }

    public MqttApplicationMessage DecodeRetained(string topic, byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        if (r.ReadByte() != FormatVersion) throw new InvalidDataException($"Retained message on {topic}: unknown record format.");
        return ReadMessage(r);
    }

    private MqttDelivery ReadDelivery(BinaryReader r)
    {
        var qos = (MqttQualityOfService)r.ReadByte();
        var retain = r.ReadBoolean();
        List<uint>? ids = null;
        for (var i = r.ReadInt32(); i > 0; i--) (ids ??= []).Add(r.ReadUInt32());
        return new MqttDelivery(ReadMessage(r), qos, retain, ids);
    }

    private MqttApplicationMessage ReadMessage(BinaryReader r)
    {
        var publisherClientId = ReadOptional(r);
        var publisherUserName = ReadOptional(r);
        var expiresAt = r.ReadInt64();
        var buffer = new ReadOnlySequence<byte>(r.ReadBytes(r.ReadInt32()));
        if (!MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, int.MaxValue, out var packet) || packet is not MqttPublishPacket publish)
        {
            throw new InvalidDataException("Stored message is not a PUBLISH packet.");
        }
        return new MqttApplicationMessage
        {
            Topic = publish.Topic,
            Payload = publish.Payload.ToArray(),
            QoS = publish.QoS,
            Retain = publish.Retain,
            Properties = publish.Properties,
            ExpiresAt = expiresAt == 0 ? null : FromUnixMilliseconds(expiresAt),
            PublisherClientId = publisherClientId,
            PublisherUserName = publisherUserName,
        };
    }
}
