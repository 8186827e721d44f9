using System.Buffers;
using System.Diagnostics;

namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// Sees every PUBLISH a client sends, after authorization and before routing, inside the broker's
/// "MQTT PUBLISH" span. Return <see cref="MqttReasonCode.Success"/> to accept; any error code (0x80 and up)
/// rejects the message: v5 publishers get it in PUBACK/PUBREC, and the message is not routed.
/// </summary>
public interface IMqttPublishInterceptor
{
    ValueTask<MqttReasonCode> InterceptAsync(MqttPublishContext context, CancellationToken cancellationToken);
}

/// <summary>
/// One received message. <see cref="Payload"/> is the broker's receive buffer, not a copy: it is valid only
/// until <see cref="IMqttPublishInterceptor.InterceptAsync"/> completes; copy what you keep.
/// </summary>
public sealed class MqttPublishContext
{
    internal MqttPublishContext(string clientId, string? userName, MqttPublishPacket packet, Activity? activity)
    {
        ClientId = clientId;
        UserName = userName;
        Topic = packet.Topic;
        Payload = packet.Payload;
        QoS = packet.QoS;
        Retain = packet.Retain;
        Properties = packet.Properties;
        Activity = activity;
    }

    public string ClientId { get; }
    public string? UserName { get; }
    public string Topic { get; }
    public ReadOnlySequence<byte> Payload { get; }
    public MqttQualityOfService QoS { get; }
    public bool Retain { get; }
    /// <summary>v5 properties as received (null on 3.1.1 or when none were sent).</summary>
    public MqttProperties? Properties { get; }
    public IReadOnlyList<MqttUserProperty> UserProperties => Properties?.UserProperties ?? (IReadOnlyList<MqttUserProperty>)[];
    /// <summary>The broker's span for this message (continues the publisher's traceparent when present).</summary>
    public Activity? Activity { get; }
}
