namespace CloudEdge.Mqtt.Broker;

/// <summary>A routed message: its payload is copied once from the publisher's receive buffer and shared by every delivery.</summary>
internal sealed class MqttApplicationMessage
{
    public required string Topic { get; init; }
    public required ReadOnlyMemory<byte> Payload { get; init; }
    public MqttQualityOfService QoS { get; init; }
    public bool Retain { get; init; }
    /// <summary>Properties forwarded to subscribers (no topic alias or subscription identifier).</summary>
    public MqttProperties? Properties { get; init; }
    /// <summary>TimeProvider timestamp after which the message is not delivered; null: never expires.</summary>
    public long? ExpiresAt { get; init; }
    public string? PublisherClientId { get; init; }
    public string? PublisherUserName { get; init; }
}

/// <summary>A message waiting in a session's queue for one subscriber.</summary>
internal sealed class MqttDelivery(MqttApplicationMessage message, MqttQualityOfService qos, bool retain, List<uint>? subscriptionIds)
{
    public MqttApplicationMessage Message { get; } = message;
    public MqttQualityOfService QoS { get; } = qos;
    public bool Retain { get; } = retain;
    public List<uint>? SubscriptionIds { get; } = subscriptionIds;
}

/// <summary>A QoS 1/2 delivery sent and not yet acknowledged.</summary>
internal sealed class MqttInflight(MqttDelivery delivery, ushort packetId)
{
    public MqttDelivery Delivery { get; } = delivery;
    public ushort PacketId { get; } = packetId;
    /// <summary>QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.</summary>
    public bool Released { get; set; }
}
