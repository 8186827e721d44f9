using System.Buffers;

namespace CloudEdge.Mqtt;

/// <summary>
/// Encodes control packets into an <see cref="IBufferWriter{T}"/> (typically a <c>PipeWriter</c>) in one
/// contiguous span. Packets the peer would have to refuse (wildcard topic in PUBLISH, packet id 0 with
/// QoS &gt; 0, a property outside its packet, ...) throw <see cref="MqttProtocolException"/> before anything is written.
/// </summary>
public static class MqttPacketWriter
{
    /// <summary>Total encoded size of <paramref name="packet"/> (fixed header included).</summary>
    public static int GetSize(MqttPacket packet, MqttProtocolVersion version)
    {
        var layout = Measure(packet, version);
        return 1 + MqttSize.VariableByteInteger((uint)layout.Remaining) + layout.Remaining;
    }

    /// <summary>Writes <paramref name="packet"/> and returns the number of bytes written.</summary>
    public static int Write(IBufferWriter<byte> output, MqttPacket packet, MqttProtocolVersion version)
    {
        var layout = Measure(packet, version);
        var total = 1 + MqttSize.VariableByteInteger((uint)layout.Remaining) + layout.Remaining;
        var span = output.GetSpan(total)[..total];
        var w = new MqttBodyWriter(span);
        w.WriteByte(FixedHeaderByte(packet));
        w.WriteVariableByteInteger((uint)layout.Remaining);
        WriteBody(ref w, packet, version, layout);
        if (w.Position != total) throw new InvalidOperationException($"Encoder wrote {w.Position} bytes for a packet measured at {total}.");
        output.Advance(total);
        return total;
    }

    /// <summary>Encodes into a new array; for tests and tools, not hot paths.</summary>
    public static byte[] ToArray(MqttPacket packet, MqttProtocolVersion version)
    {
        var buffer = new ArrayBufferWriter<byte>();
        Write(buffer, packet, version);
        return buffer.WrittenSpan.ToArray();
    }

    private readonly record struct Layout(int Remaining, int Properties, int WillProperties = 0);

    private static bool V5(MqttProtocolVersion version) => version == MqttProtocolVersion.V500;

    private static int PropertyBlock(int size) => MqttSize.VariableByteInteger((uint)size) + size;

    private static byte FixedHeaderByte(MqttPacket packet)
    {
        var b = (byte)((byte)packet.Type << 4);
        return packet switch
        {
            MqttPublishPacket p => (byte)(b | (p.Dup ? 0x08 : 0) | ((byte)p.QoS << 1) | (p.Retain ? 0x01 : 0)),
            MqttPubRelPacket or MqttSubscribePacket or MqttUnsubscribePacket => (byte)(b | 0x02),
            _ => b,
        };
    }

    private static Layout Measure(MqttPacket packet, MqttProtocolVersion version)
    {
        var v5 = V5(version);
        switch (packet)
        {
            case MqttConnectPacket c:
            {
                var props = v5 ? MqttPropertyCodec.Size(c.Properties, MqttPropertyScope.Connect) : 0;
                var size = 6 + 1 + 1 + 2 + (v5 ? PropertyBlock(props) : 0) + MqttSize.String(c.ClientId);
                var willProps = 0;
                if (c.Will is { } will)
                {
                    if (!MqttTopic.IsValidTopicName(will.Topic)) throw new MqttProtocolException(MqttReasonCode.TopicNameInvalid, "Will topic is not a valid topic name.");
                    if (will.QoS > MqttQualityOfService.ExactlyOnce) throw MqttProtocolException.Malformed("Will QoS 3.");
                    willProps = v5 ? MqttPropertyCodec.Size(will.Properties, MqttPropertyScope.Will) : 0;
                    size += (v5 ? PropertyBlock(willProps) : 0) + MqttSize.String(will.Topic) + MqttSize.Binary(will.Payload.Length);
                }
                if (c.UserName is { } user) size += MqttSize.String(user);
                if (c.Password is { } password)
                {
                    if (!v5 && c.UserName is null) throw MqttProtocolException.Malformed("Password without user name (3.1.1).");
                    size += MqttSize.Binary(password.Length);
                }
                return new Layout(size, props, willProps);
            }
            case MqttConnAckPacket ack:
            {
                var props = v5 ? MqttPropertyCodec.Size(ack.Properties, MqttPropertyScope.ConnAck) : 0;
                return new Layout(2 + (v5 ? PropertyBlock(props) : 0), props);
            }
            case MqttPublishPacket p:
            {
                if (p.QoS > MqttQualityOfService.ExactlyOnce) throw MqttProtocolException.Malformed("PUBLISH with QoS 3.");
                if (p.QoS == MqttQualityOfService.AtMostOnce && p.Dup) throw MqttProtocolException.Malformed("PUBLISH with QoS 0 and DUP set.");
                if (p.QoS > MqttQualityOfService.AtMostOnce && p.PacketId == 0) throw MqttProtocolException.Protocol("PUBLISH with QoS > 0 and packet identifier 0.");
                if (p.Topic.Length == 0 ? !(v5 && p.Properties?.TopicAlias is not null) : !MqttTopic.IsValidTopicName(p.Topic))
                {
                    throw new MqttProtocolException(MqttReasonCode.TopicNameInvalid, "PUBLISH topic is not a valid topic name.");
                }
                var props = v5 ? MqttPropertyCodec.Size(p.Properties, MqttPropertyScope.Publish) : 0;
                var size = MqttSize.String(p.Topic) + (p.QoS > 0 ? 2 : 0) + (v5 ? PropertyBlock(props) : 0) + checked((int)p.Payload.Length);
                return new Layout(CheckRemaining(size), props);
            }
            case MqttPublishResponsePacket r:
            {
                if (r.PacketId == 0) throw MqttProtocolException.Protocol($"{r.Type} with packet identifier 0.");
                if (!v5) return new Layout(2, 0);
                var props = MqttPropertyCodec.Size(r.Properties, MqttPropertyScope.PubResponse);
                if (props > 0) return new Layout(3 + PropertyBlock(props), props);
                return new Layout(r.ReasonCode == MqttReasonCode.Success ? 2 : 3, 0);
            }
            case MqttSubscribePacket s:
            {
                if (s.PacketId == 0) throw MqttProtocolException.Protocol("SUBSCRIBE with packet identifier 0.");
                if (s.Subscriptions.Count == 0) throw MqttProtocolException.Protocol("SUBSCRIBE without a topic filter.");
                var props = v5 ? MqttPropertyCodec.Size(s.Properties, MqttPropertyScope.Subscribe) : 0;
                var size = 2 + (v5 ? PropertyBlock(props) : 0);
                foreach (var sub in s.Subscriptions)
                {
                    if (sub.QoS > MqttQualityOfService.ExactlyOnce || sub.RetainHandling > MqttRetainHandling.DoNotSend) throw MqttProtocolException.Malformed("Invalid subscription options.");
                    size += MqttSize.String(sub.TopicFilter) + 1;
                }
                return new Layout(CheckRemaining(size), props);
            }
            case MqttSubAckPacket sa:
            {
                var props = v5 ? MqttPropertyCodec.Size(sa.Properties, MqttPropertyScope.SubAck) : 0;
                return new Layout(CheckRemaining(2 + (v5 ? PropertyBlock(props) : 0) + sa.ReasonCodes.Count), props);
            }
            case MqttUnsubscribePacket u:
            {
                if (u.PacketId == 0) throw MqttProtocolException.Protocol("UNSUBSCRIBE with packet identifier 0.");
                if (u.TopicFilters.Count == 0) throw MqttProtocolException.Protocol("UNSUBSCRIBE without a topic filter.");
                var props = v5 ? MqttPropertyCodec.Size(u.Properties, MqttPropertyScope.Unsubscribe) : 0;
                var size = 2 + (v5 ? PropertyBlock(props) : 0);
                foreach (var f in u.TopicFilters) size += MqttSize.String(f);
                return new Layout(CheckRemaining(size), props);
            }
            case MqttUnsubAckPacket ua:
            {
                if (!v5) return new Layout(2, 0);
                var props = MqttPropertyCodec.Size(ua.Properties, MqttPropertyScope.UnsubAck);
                return new Layout(CheckRemaining(2 + PropertyBlock(props) + ua.ReasonCodes.Count), props);
            }
            case MqttPingReqPacket or MqttPingRespPacket:
                return new Layout(0, 0);
            case MqttDisconnectPacket d:
            {
                if (!v5) return new Layout(0, 0);
                var props = MqttPropertyCodec.Size(d.Properties, MqttPropertyScope.Disconnect);
                if (props > 0) return new Layout(1 + PropertyBlock(props), props);
                return new Layout(d.ReasonCode == MqttReasonCode.Success ? 0 : 1, 0);
            }
            case MqttAuthPacket a:
            {
                if (!v5) throw MqttProtocolException.Protocol("AUTH does not exist in MQTT 3.1.1.");
                var props = MqttPropertyCodec.Size(a.Properties, MqttPropertyScope.Auth);
                if (props > 0) return new Layout(1 + PropertyBlock(props), props);
                return new Layout(a.ReasonCode == MqttReasonCode.Success ? 0 : 1, 0);
            }
            default:
                throw new ArgumentException($"Unknown packet {packet.GetType().Name}.", nameof(packet));
        }
    }

    private static int CheckRemaining(int size) => size <= (int)MqttSize.MaxVariableByteInteger
        ? size
        : throw new MqttProtocolException(MqttReasonCode.PacketTooLarge, "Packet exceeds the protocol's maximum size.");

    private static void WriteBody(ref MqttBodyWriter w, MqttPacket packet, MqttProtocolVersion version, Layout layout)
    {
        var v5 = V5(version);
        switch (packet)
        {
            case MqttConnectPacket c:
            {
                w.WriteString("MQTT");
                w.WriteByte((byte)version);
                var flags = 0;
                if (c.CleanStart) flags |= 0x02;
                if (c.Will is { } will) flags |= 0x04 | ((byte)will.QoS << 3) | (will.Retain ? 0x20 : 0);
                if (c.Password is not null) flags |= 0x40;
                if (c.UserName is not null) flags |= 0x80;
                w.WriteByte((byte)flags);
                w.WriteUInt16(c.KeepAlive);
                if (v5) MqttPropertyCodec.Write(ref w, c.Properties, layout.Properties);
                w.WriteString(c.ClientId);
                if (c.Will is { } wm)
                {
                    if (v5) MqttPropertyCodec.Write(ref w, wm.Properties, layout.WillProperties);
                    w.WriteString(wm.Topic);
                    w.WriteBinary(wm.Payload.Span);
                }
                if (c.UserName is { } user) w.WriteString(user);
                if (c.Password is { } password) w.WriteBinary(password.Span);
                break;
            }
            case MqttConnAckPacket ack:
                w.WriteByte(ack.SessionPresent ? (byte)1 : (byte)0);
                if (v5)
                {
                    w.WriteByte((byte)ack.ReasonCode);
                    MqttPropertyCodec.Write(ref w, ack.Properties, layout.Properties);
                }
                else
                {
                    w.WriteByte((byte)ack.ReasonCode.ToConnectReturnCode());
                }
                break;
            case MqttPublishPacket p:
                w.WriteString(p.Topic);
                if (p.QoS > 0) w.WriteUInt16(p.PacketId);
                if (v5) MqttPropertyCodec.Write(ref w, p.Properties, layout.Properties);
                foreach (var segment in p.Payload) w.WriteBytes(segment.Span);
                break;
            case MqttPublishResponsePacket r:
                w.WriteUInt16(r.PacketId);
                if (layout.Remaining > 2) w.WriteByte((byte)r.ReasonCode);
                if (layout.Remaining > 3) MqttPropertyCodec.Write(ref w, r.Properties, layout.Properties);
                break;
            case MqttSubscribePacket s:
                w.WriteUInt16(s.PacketId);
                if (v5) MqttPropertyCodec.Write(ref w, s.Properties, layout.Properties);
                foreach (var sub in s.Subscriptions)
                {
                    w.WriteString(sub.TopicFilter);
                    var options = (byte)sub.QoS;
                    if (v5)
                    {
                        if (sub.NoLocal) options |= 0x04;
                        if (sub.RetainAsPublished) options |= 0x08;
                        options |= (byte)((byte)sub.RetainHandling << 4);
                    }
                    w.WriteByte(options);
                }
                break;
            case MqttSubAckPacket sa:
                w.WriteUInt16(sa.PacketId);
                if (v5) MqttPropertyCodec.Write(ref w, sa.Properties, layout.Properties);
                foreach (var code in sa.ReasonCodes)
                {
                    w.WriteByte(v5 || (byte)code <= 2 ? (byte)code : (byte)0x80);
                }
                break;
            case MqttUnsubscribePacket u:
                w.WriteUInt16(u.PacketId);
                if (v5) MqttPropertyCodec.Write(ref w, u.Properties, layout.Properties);
                foreach (var f in u.TopicFilters) w.WriteString(f);
                break;
            case MqttUnsubAckPacket ua:
                w.WriteUInt16(ua.PacketId);
                if (v5)
                {
                    MqttPropertyCodec.Write(ref w, ua.Properties, layout.Properties);
                    foreach (var code in ua.ReasonCodes) w.WriteByte((byte)code);
                }
                break;
            case MqttDisconnectPacket d:
                if (layout.Remaining > 0) w.WriteByte((byte)d.ReasonCode);
                if (layout.Remaining > 1) MqttPropertyCodec.Write(ref w, d.Properties, layout.Properties);
                break;
            case MqttAuthPacket a:
                if (layout.Remaining > 0) w.WriteByte((byte)a.ReasonCode);
                if (layout.Remaining > 1) MqttPropertyCodec.Write(ref w, a.Properties, layout.Properties);
                break;
        }
    }
}
