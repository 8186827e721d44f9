namespace CloudEdge.Mqtt;

/// <summary>
/// A violation of the MQTT specification found while decoding or encoding. <see cref="ReasonCode"/> is
/// the v5 reason code the peer gets in DISCONNECT (or CONNACK); a 3.1.1 peer is disconnected.
/// </summary>
public sealed class MqttProtocolException : Exception
{
    public MqttProtocolException(MqttReasonCode reasonCode, string message)
        : base(message) => ReasonCode = reasonCode;

    public MqttReasonCode ReasonCode { get; }

    internal static MqttProtocolException Malformed(string message) => new(MqttReasonCode.MalformedPacket, message);

    internal static MqttProtocolException Protocol(string message) => new(MqttReasonCode.ProtocolError, message);
}
