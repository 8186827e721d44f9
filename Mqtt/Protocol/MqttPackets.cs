using System.Buffers;

namespace CloudEdge.Mqtt;

/// <summary>Base of every control packet. Packets are plain data; the reader and writer validate them.</summary>
public abstract class MqttPacket
{
    private protected MqttPacket() { }

    public abstract MqttPacketType Type { get; }
}

public sealed class MqttConnectPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Connect;
    public MqttProtocolVersion ProtocolVersion { get; set; } = MqttProtocolVersion.V500;
    public string ClientId { get; set; } = "";
    /// <summary>Clean Start (v5) or Clean Session (3.1.1).</summary>
    public bool CleanStart { get; set; } = true;
    /// <summary>Seconds; 0 turns keep-alive off.</summary>
    public ushort KeepAlive { get; set; }
    public string? UserName { get; set; }
    public ReadOnlyMemory<byte>? Password { get; set; }
    public MqttWillMessage? Will { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>The will of a CONNECT: published by the server when the connection ends without a normal DISCONNECT.</summary>
public sealed class MqttWillMessage
{
    public string Topic { get; set; } = "";
    public ReadOnlyMemory<byte> Payload { get; set; }
    public MqttQualityOfService QoS { get; set; }
    public bool Retain { get; set; }
    /// <summary>v5 will properties (Will Delay Interval, Message Expiry, Content Type, ..., User Properties).</summary>
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttConnAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.ConnAck;
    public bool SessionPresent { get; set; }
    /// <summary>On 3.1.1 the writer maps this to the nearest return code (<see cref="MqttReasonCodes.ToConnectReturnCode"/>).</summary>
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttPublishPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Publish;
    /// <summary>May be empty on v5 when <see cref="MqttProperties.TopicAlias"/> is set.</summary>
    public string Topic { get; set; } = "";
    /// <summary>
    /// The application message. A decoded payload is a slice of the reader's input buffer: it is valid
    /// until that buffer is released (the pipe is advanced); copy it to keep it.
    /// </summary>
    public ReadOnlySequence<byte> Payload { get; set; }
    public MqttQualityOfService QoS { get; set; }
    public bool Retain { get; set; }
    public bool Dup { get; set; }
    /// <summary>Non-zero when QoS &gt; 0, zero otherwise.</summary>
    public ushort PacketId { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>PUBACK, PUBREC, PUBREL and PUBCOMP share one shape: packet id, reason code, properties.</summary>
public abstract class MqttPublishResponsePacket : MqttPacket
{
    private protected MqttPublishResponsePacket() { }

    public ushort PacketId { get; set; }
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttPubAckPacket : MqttPublishResponsePacket
{
    public override MqttPacketType Type => MqttPacketType.PubAck;
}

public sealed class MqttPubRecPacket : MqttPublishResponsePacket
{
    public override MqttPacketType Type => MqttPacketType.PubRec;
}

public sealed class MqttPubRelPacket : MqttPublishResponsePacket
{
    public override MqttPacketType Type => MqttPacketType.PubRel;
}

public sealed class MqttPubCompPacket : MqttPublishResponsePacket
{
    public override MqttPacketType Type => MqttPacketType.PubComp;
}

/// <summary>One topic filter of SUBSCRIBE with its options.</summary>
public sealed class MqttSubscription
{
    public string TopicFilter { get; set; } = "";
    public MqttQualityOfService QoS { get; set; }
    public bool NoLocal { get; set; }
    public bool RetainAsPublished { get; set; }
    public MqttRetainHandling RetainHandling { get; set; }
}

public sealed class MqttSubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Subscribe;
    public ushort PacketId { get; set; }
    public List<MqttSubscription> Subscriptions { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttSubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.SubAck;
    public ushort PacketId { get; set; }
    /// <summary>One per subscription. On 3.1.1 any error code is written as 0x80 (Failure).</summary>
    public List<MqttReasonCode> ReasonCodes { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttUnsubscribePacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Unsubscribe;
    public ushort PacketId { get; set; }
    public List<string> TopicFilters { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttUnsubAckPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.UnsubAck;
    public ushort PacketId { get; set; }
    /// <summary>v5 only (one per topic filter); 3.1.1 UNSUBACK has no payload.</summary>
    public List<MqttReasonCode> ReasonCodes { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class MqttPingReqPacket : MqttPacket
{
    public static readonly MqttPingReqPacket Instance = new();
    public override MqttPacketType Type => MqttPacketType.PingReq;
}

public sealed class MqttPingRespPacket : MqttPacket
{
    public static readonly MqttPingRespPacket Instance = new();
    public override MqttPacketType Type => MqttPacketType.PingResp;
}

public sealed class MqttDisconnectPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Disconnect;
    /// <summary>v5 only; 3.1.1 DISCONNECT is always a normal disconnection.</summary>
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>v5 only (enhanced authentication).</summary>
public sealed class MqttAuthPacket : MqttPacket
{
    public override MqttPacketType Type => MqttPacketType.Auth;
    public MqttReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}
