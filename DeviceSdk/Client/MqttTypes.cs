namespace CloudEdge.DeviceSdk;

// The SDK's own protocol vocabulary: the public API does not expose MQTTnet's types, so the transport
// underneath can change without breaking device code. Values are the wire values.

public enum MqttProtocolVersion : byte
{
    V311 = 4,
    V500 = 5,
}

public enum MqttQualityOfService : byte
{
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

/// <summary>Subscription option bits 4-5 (MQTT 5.0).</summary>
public enum MqttRetainHandling : byte
{
    SendAtSubscribe = 0,
    SendAtSubscribeIfNew = 1,
    DoNotSend = 2,
}

public enum MqttPayloadFormat : byte
{
    Unspecified = 0,
    Utf8 = 1,
}

/// <summary>MQTT 5.0 reason codes; 0x00 is Success, Normal disconnection and Granted QoS 0 alike.</summary>
public enum MqttReasonCode : byte
{
    Success = 0x00,
    GrantedQoS1 = 0x01,
    GrantedQoS2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QoSNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

public static class MqttReasonCodes
{
    /// <summary>True for reason codes 0x80 and above, which mean failure in every packet.</summary>
    public static bool IsError(this MqttReasonCode code) => (byte)code >= 0x80;
}

public readonly record struct MqttUserProperty(string Name, string Value);

public sealed class MqttSubscription
{
    public string TopicFilter { get; set; } = "";
    public MqttQualityOfService QoS { get; set; }
    public bool NoLocal { get; set; }
    public bool RetainAsPublished { get; set; }
    public MqttRetainHandling RetainHandling { get; set; }
}

/// <summary>Topic name and filter rules of MQTT section 4.7, checked before anything is queued.</summary>
internal static class MqttTopic
{
    private const int MaximumUtf8Length = 65_535;

    public static bool IsValidTopicName(string? topic) =>
        !string.IsNullOrEmpty(topic) && topic.AsSpan().IndexOfAny("+#\0") < 0 && System.Text.Encoding.UTF8.GetByteCount(topic) <= MaximumUtf8Length;

    public static bool IsValidTopicFilter(string? filter)
    {
        if (string.IsNullOrEmpty(filter) || filter.Contains('\0') || System.Text.Encoding.UTF8.GetByteCount(filter) > MaximumUtf8Length) return false;
        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level == "#") return i == levels.Length - 1;
            if (level.Contains('#')) return false;
            if (level.Contains('+') && level != "+") return false;
        }
        return true;
    }
}
