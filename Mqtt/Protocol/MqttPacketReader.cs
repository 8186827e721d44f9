using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace CloudEdge.Mqtt;

/// <summary>
/// Decodes control packets from a byte sequence (typically <c>PipeReader.ReadAsync().Buffer</c>).
/// Every violation throws <see cref="MqttProtocolException"/> with the v5 reason code.
/// </summary>
public static class MqttPacketReader
{
    /// <summary>The largest packet the protocol can express: 268,435,455 bytes of remaining length plus the fixed header.</summary>
    public const int ProtocolMaximumPacketSize = 268_435_460;

    /// <summary>
    /// Tries to decode one packet from the start of <paramref name="buffer"/>. On success the buffer is
    /// sliced past the packet. Returns false when more bytes are needed (nothing consumed).
    /// </summary>
    /// <param name="version">The version negotiated by CONNECT; CONNECT itself carries its own version.</param>
    /// <param name="maximumPacketSize">Total packet size (fixed header included) above which the packet is refused with 0x95, checked before the body arrives.</param>
    public static bool TryRead(
        ref ReadOnlySequence<byte> buffer,
        MqttProtocolVersion version,
        int maximumPacketSize,
        [NotNullWhen(true)] out MqttPacket? packet)
    {
        packet = null;
        if (buffer.Length < 2) return false;
        Span<byte> head = stackalloc byte[5];
        var headLength = (int)Math.Min(5, buffer.Length);
        buffer.Slice(0, headLength).CopyTo(head);

        var first = head[0];
        var type = (MqttPacketType)(first >> 4);
        var flags = first & 0x0F;
        ValidateFixedHeader(type, flags, version);

        var remaining = 0;
        var index = 1;
        while (true)
        {
            if (index >= headLength) return false;
            var b = head[index];
            remaining |= (b & 0x7F) << (7 * (index - 1));
            index++;
            if ((b & 0x80) == 0)
            {
                if (b == 0 && index > 2) throw MqttProtocolException.Malformed("Remaining length is not minimally encoded.");
                break;
            }
            if (index == 5) throw MqttProtocolException.Malformed("Remaining length longer than four bytes.");
        }

        var total = (long)index + remaining;
        if (total > maximumPacketSize)
        {
            throw new MqttProtocolException(MqttReasonCode.PacketTooLarge, $"Packet of {total} bytes exceeds the maximum of {maximumPacketSize}.");
        }
        if (buffer.Length < total) return false;

        var body = buffer.Slice(index, remaining);
        packet = Decode(type, flags, body, version);
        buffer = buffer.Slice(total);
        return true;
    }

    private static void ValidateFixedHeader(MqttPacketType type, int flags, MqttProtocolVersion version)
    {
        switch (type)
        {
            case MqttPacketType.Publish:
                if ((flags & 0x06) == 0x06) throw MqttProtocolException.Malformed("PUBLISH with QoS 3.");
                if ((flags & 0x06) == 0 && (flags & 0x08) != 0) throw MqttProtocolException.Malformed("PUBLISH with QoS 0 and DUP set.");
                return;
            case MqttPacketType.PubRel:
            case MqttPacketType.Subscribe:
            case MqttPacketType.Unsubscribe:
                if (flags != 0x02) throw MqttProtocolException.Malformed($"{type} with reserved flags {flags:X}.");
                return;
            case MqttPacketType.Auth when version == MqttProtocolVersion.V311:
                throw MqttProtocolException.Malformed("Packet type 15 is reserved in MQTT 3.1.1.");
            case >= MqttPacketType.Connect and <= MqttPacketType.Auth:
                if (flags != 0) throw MqttProtocolException.Malformed($"{type} with reserved flags {flags:X}.");
                return;
            default:
                throw MqttProtocolException.Malformed("Reserved packet type 0.");
        }
    }

    private static MqttPacket Decode(MqttPacketType type, int flags, ReadOnlySequence<byte> body, MqttProtocolVersion version)
    {
        if (body.IsSingleSegment) return Decode(type, flags, body.FirstSpan, body, version);
        var length = (int)body.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            body.CopyTo(rented);
            return Decode(type, flags, rented.AsSpan(0, length), body, version);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static MqttPacket Decode(MqttPacketType type, int flags, ReadOnlySpan<byte> span, ReadOnlySequence<byte> body, MqttProtocolVersion version)
    {
        var reader = new MqttBodyReader(span);
        MqttPacket packet = type switch
        {
            MqttPacketType.Connect => ReadConnect(ref reader),
            MqttPacketType.ConnAck => ReadConnAck(ref reader, version),
            MqttPacketType.Publish => ReadPublish(ref reader, flags, body, version),
            MqttPacketType.PubAck => ReadPublishResponse(ref reader, new MqttPubAckPacket(), version),
            MqttPacketType.PubRec => ReadPublishResponse(ref reader, new MqttPubRecPacket(), version),
            MqttPacketType.PubRel => ReadPublishResponse(ref reader, new MqttPubRelPacket(), version),
            MqttPacketType.PubComp => ReadPublishResponse(ref reader, new MqttPubCompPacket(), version),
            MqttPacketType.Subscribe => ReadSubscribe(ref reader, version),
            MqttPacketType.SubAck => ReadSubAck(ref reader, version),
            MqttPacketType.Unsubscribe => ReadUnsubscribe(ref reader, version),
            MqttPacketType.UnsubAck => ReadUnsubAck(ref reader, version),
            MqttPacketType.PingReq => MqttPingReqPacket.Instance,
            MqttPacketType.PingResp => MqttPingRespPacket.Instance,
            MqttPacketType.Disconnect => ReadDisconnect(ref reader, version),
            MqttPacketType.Auth => ReadAuth(ref reader),
            _ => throw MqttProtocolException.Malformed("Reserved packet type."),
        };
        if (reader.Remaining != 0) throw MqttProtocolException.Malformed($"{type} has {reader.Remaining} unexpected trailing bytes.");
        return packet;
    }

    private static MqttConnectPacket ReadConnect(ref MqttBodyReader r)
    {
        var name = r.ReadBinarySpan();
        var level = r.ReadByte();
        if (!name.SequenceEqual("MQTT"u8))
        {
            if (name.SequenceEqual("MQIsdp"u8)) throw new MqttProtocolException(MqttReasonCode.UnsupportedProtocolVersion, "MQTT 3.1 (MQIsdp) is not supported.");
            throw MqttProtocolException.Malformed("Protocol name is not MQTT.");
        }
        if (level is not (4 or 5)) throw new MqttProtocolException(MqttReasonCode.UnsupportedProtocolVersion, $"Protocol level {level} is not supported.");
        var version = (MqttProtocolVersion)level;
        var flags = r.ReadByte();
        if ((flags & 0x01) != 0) throw MqttProtocolException.Malformed("CONNECT reserved flag set.");
        var willFlag = (flags & 0x04) != 0;
        var willQoS = (flags >> 3) & 0x03;
        var willRetain = (flags & 0x20) != 0;
        var passwordFlag = (flags & 0x40) != 0;
        var userNameFlag = (flags & 0x80) != 0;
        if (willQoS == 3) throw MqttProtocolException.Malformed("Will QoS 3.");
        if (!willFlag && (willQoS != 0 || willRetain)) throw MqttProtocolException.Malformed("Will QoS or Will Retain set without the Will flag.");
        if (version == MqttProtocolVersion.V311 && passwordFlag && !userNameFlag) throw MqttProtocolException.Malformed("Password without user name (3.1.1).");

        var packet = new MqttConnectPacket
        {
            ProtocolVersion = version,
            CleanStart = (flags & 0x02) != 0,
            KeepAlive = r.ReadUInt16(),
        };
        if (version == MqttProtocolVersion.V500) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Connect);
        packet.ClientId = r.ReadString();
        if (willFlag)
        {
            var will = new MqttWillMessage { QoS = (MqttQualityOfService)willQoS, Retain = willRetain };
            if (version == MqttProtocolVersion.V500) will.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Will);
            will.Topic = r.ReadString();
            if (!MqttTopic.IsValidTopicName(will.Topic)) throw new MqttProtocolException(MqttReasonCode.TopicNameInvalid, "Will topic is not a valid topic name.");
            will.Payload = r.ReadBinary();
            packet.Will = will;
        }
        if (userNameFlag) packet.UserName = r.ReadString();
        if (passwordFlag) packet.Password = r.ReadBinary();
        return packet;
    }

    private static MqttConnAckPacket ReadConnAck(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var ackFlags = r.ReadByte();
        if ((ackFlags & 0xFE) != 0) throw MqttProtocolException.Malformed("CONNACK reserved acknowledge flags set.");
        var code = r.ReadByte();
        var packet = new MqttConnAckPacket { SessionPresent = ackFlags == 1 };
        if (version == MqttProtocolVersion.V500)
        {
            packet.ReasonCode = (MqttReasonCode)code;
            packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.ConnAck);
        }
        else
        {
            if (code > 5) throw MqttProtocolException.Malformed($"CONNACK return code {code}.");
            packet.ReasonCode = ((MqttConnectReturnCode)code).ToReasonCode();
        }
        if (packet.SessionPresent && packet.ReasonCode != MqttReasonCode.Success) throw MqttProtocolException.Protocol("Session present with a failure code.");
        return packet;
    }

    private static MqttPublishPacket ReadPublish(ref MqttBodyReader r, int flags, ReadOnlySequence<byte> body, MqttProtocolVersion version)
    {
        var packet = new MqttPublishPacket
        {
            Dup = (flags & 0x08) != 0,
            QoS = (MqttQualityOfService)((flags >> 1) & 0x03),
            Retain = (flags & 0x01) != 0,
            Topic = r.ReadString(),
        };
        if (packet.Topic.AsSpan().IndexOfAny('+', '#') >= 0) throw new MqttProtocolException(MqttReasonCode.TopicNameInvalid, "PUBLISH topic contains a wildcard.");
        if (packet.QoS > MqttQualityOfService.AtMostOnce)
        {
            packet.PacketId = r.ReadUInt16();
            if (packet.PacketId == 0) throw MqttProtocolException.Protocol("PUBLISH with QoS > 0 and packet identifier 0.");
        }
        if (version == MqttProtocolVersion.V500) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Publish);
        if (packet.Topic.Length == 0)
        {
            if (version == MqttProtocolVersion.V311) throw MqttProtocolException.Malformed("PUBLISH with an empty topic.");
            if (packet.Properties?.TopicAlias is null) throw MqttProtocolException.Protocol("PUBLISH with an empty topic and no topic alias.");
        }
        packet.Payload = body.Slice(r.Position);
        r.ReadBytes(r.Remaining);
        if (packet.Properties?.PayloadFormatIndicator == MqttPayloadFormat.Utf8 && !IsValidUtf8(packet.Payload))
        {
            throw new MqttProtocolException(MqttReasonCode.PayloadFormatInvalid, "Payload is marked UTF-8 but is not.");
        }
        return packet;
    }

    private static bool IsValidUtf8(ReadOnlySequence<byte> payload)
    {
        if (payload.IsSingleSegment) return System.Text.Unicode.Utf8.IsValid(payload.FirstSpan);
        return System.Text.Unicode.Utf8.IsValid(payload.ToArray());
    }

    private static MqttPublishResponsePacket ReadPublishResponse(ref MqttBodyReader r, MqttPublishResponsePacket packet, MqttProtocolVersion version)
    {
        packet.PacketId = r.ReadUInt16();
        if (packet.PacketId == 0) throw MqttProtocolException.Protocol($"{packet.Type} with packet identifier 0.");
        if (version == MqttProtocolVersion.V500 && r.Remaining > 0)
        {
            packet.ReasonCode = (MqttReasonCode)r.ReadByte();
            if (!IsValidPublishResponseCode(packet.Type, packet.ReasonCode))
            {
                throw MqttProtocolException.Protocol($"{packet.Type} with reason code 0x{(byte)packet.ReasonCode:X2}, which it cannot carry.");
            }
            if (r.Remaining > 0) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.PubResponse);
        }
        return packet;
    }

    // Sections 3.4.2.1, 3.5.2.1, 3.6.2.1 and 3.7.2.1 list the only codes each acknowledgement may carry.
    private static bool IsValidPublishResponseCode(MqttPacketType type, MqttReasonCode code) => type switch
    {
        MqttPacketType.PubAck or MqttPacketType.PubRec => (byte)code is 0x00 or 0x10 or 0x80 or 0x83 or 0x87 or 0x90 or 0x91 or 0x97 or 0x99,
        _ => (byte)code is 0x00 or 0x92,
    };

    private static MqttSubscribePacket ReadSubscribe(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var packet = new MqttSubscribePacket { PacketId = r.ReadUInt16() };
        if (packet.PacketId == 0) throw MqttProtocolException.Protocol("SUBSCRIBE with packet identifier 0.");
        if (version == MqttProtocolVersion.V500) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Subscribe);
        if (r.Remaining == 0) throw Empty(version, "SUBSCRIBE without a topic filter.");
        while (r.Remaining > 0)
        {
            var filter = r.ReadString();
            var options = r.ReadByte();
            var qos = options & 0x03;
            if (qos == 3) throw MqttProtocolException.Malformed("Subscription with QoS 3.");
            var subscription = new MqttSubscription { TopicFilter = filter, QoS = (MqttQualityOfService)qos };
            if (version == MqttProtocolVersion.V311)
            {
                if ((options & 0xFC) != 0) throw MqttProtocolException.Malformed("SUBSCRIBE reserved option bits set.");
            }
            else
            {
                if ((options & 0xC0) != 0) throw MqttProtocolException.Malformed("SUBSCRIBE reserved option bits set.");
                var retainHandling = (options >> 4) & 0x03;
                if (retainHandling == 3) throw MqttProtocolException.Protocol("Retain Handling 3.");
                subscription.NoLocal = (options & 0x04) != 0;
                subscription.RetainAsPublished = (options & 0x08) != 0;
                subscription.RetainHandling = (MqttRetainHandling)retainHandling;
            }
            packet.Subscriptions.Add(subscription);
        }
        return packet;
    }

    private static MqttSubAckPacket ReadSubAck(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var packet = new MqttSubAckPacket { PacketId = r.ReadUInt16() };
        if (version == MqttProtocolVersion.V500) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.SubAck);
        while (r.Remaining > 0)
        {
            var code = r.ReadByte();
            if (version == MqttProtocolVersion.V311 && code is > 2 and not 0x80) throw MqttProtocolException.Malformed($"SUBACK return code {code:X2}.");
            packet.ReasonCodes.Add((MqttReasonCode)code);
        }
        return packet;
    }

    private static MqttUnsubscribePacket ReadUnsubscribe(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var packet = new MqttUnsubscribePacket { PacketId = r.ReadUInt16() };
        if (packet.PacketId == 0) throw MqttProtocolException.Protocol("UNSUBSCRIBE with packet identifier 0.");
        if (version == MqttProtocolVersion.V500) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Unsubscribe);
        if (r.Remaining == 0) throw Empty(version, "UNSUBSCRIBE without a topic filter.");
        while (r.Remaining > 0) packet.TopicFilters.Add(r.ReadString());
        return packet;
    }

    private static MqttUnsubAckPacket ReadUnsubAck(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var packet = new MqttUnsubAckPacket { PacketId = r.ReadUInt16() };
        if (version == MqttProtocolVersion.V500)
        {
            packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.UnsubAck);
            while (r.Remaining > 0) packet.ReasonCodes.Add((MqttReasonCode)r.ReadByte());
        }
        return packet;
    }

    private static MqttDisconnectPacket ReadDisconnect(ref MqttBodyReader r, MqttProtocolVersion version)
    {
        var packet = new MqttDisconnectPacket();
        if (version == MqttProtocolVersion.V500 && r.Remaining > 0)
        {
            packet.ReasonCode = (MqttReasonCode)r.ReadByte();
            if (r.Remaining > 0) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Disconnect);
        }
        return packet;
    }

    private static MqttAuthPacket ReadAuth(ref MqttBodyReader r)
    {
        var packet = new MqttAuthPacket();
        if (r.Remaining > 0)
        {
            packet.ReasonCode = (MqttReasonCode)r.ReadByte();
            if (packet.ReasonCode is not (MqttReasonCode.Success or MqttReasonCode.ContinueAuthentication or MqttReasonCode.ReAuthenticate))
            {
                throw MqttProtocolException.Malformed($"AUTH reason code 0x{(byte)packet.ReasonCode:X2}.");
            }
            if (r.Remaining > 0) packet.Properties = MqttPropertyCodec.Read(ref r, MqttPropertyScope.Auth);
        }
        return packet;
    }

    private static MqttProtocolException Empty(MqttProtocolVersion version, string message) =>
        version == MqttProtocolVersion.V311 ? MqttProtocolException.Malformed(message) : MqttProtocolException.Protocol(message);
}
