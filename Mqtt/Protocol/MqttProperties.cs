namespace CloudEdge.Mqtt;

/// <summary>A v5 user property: a UTF-8 name/value pair; names may repeat and order is kept.</summary>
public readonly record struct MqttUserProperty(string Name, string Value);

/// <summary>
/// MQTT 5.0 properties (section 2.2.2). A null member is absent on the wire. Which members a packet may
/// carry is checked by the reader and the writer: a property outside its packet is a malformed packet,
/// a property given twice (other than User Property and, in PUBLISH, Subscription Identifier) a protocol error.
/// </summary>
public sealed class MqttProperties
{
    public MqttPayloadFormat? PayloadFormatIndicator { get; set; }
    public uint? MessageExpiryInterval { get; set; }
    public string? ContentType { get; set; }
    public string? ResponseTopic { get; set; }
    public ReadOnlyMemory<byte>? CorrelationData { get; set; }
    /// <summary>In SUBSCRIBE at most one; in PUBLISH (server to client) one per matching subscription.</summary>
    public List<uint>? SubscriptionIdentifiers { get; set; }
    public uint? SessionExpiryInterval { get; set; }
    public string? AssignedClientIdentifier { get; set; }
    public ushort? ServerKeepAlive { get; set; }
    public string? AuthenticationMethod { get; set; }
    public ReadOnlyMemory<byte>? AuthenticationData { get; set; }
    public bool? RequestProblemInformation { get; set; }
    public uint? WillDelayInterval { get; set; }
    public bool? RequestResponseInformation { get; set; }
    public string? ResponseInformation { get; set; }
    public string? ServerReference { get; set; }
    public string? ReasonString { get; set; }
    public ushort? ReceiveMaximum { get; set; }
    public ushort? TopicAliasMaximum { get; set; }
    public ushort? TopicAlias { get; set; }
    public MqttQualityOfService? MaximumQoS { get; set; }
    public bool? RetainAvailable { get; set; }
    public List<MqttUserProperty>? UserProperties { get; set; }
    public uint? MaximumPacketSize { get; set; }
    public bool? WildcardSubscriptionAvailable { get; set; }
    public bool? SubscriptionIdentifiersAvailable { get; set; }
    public bool? SharedSubscriptionAvailable { get; set; }

    /// <summary>The first user property with this name, or null.</summary>
    public string? GetUserProperty(string name)
    {
        if (UserProperties is null) return null;
        foreach (var p in UserProperties)
        {
            if (p.Name == name) return p.Value;
        }
        return null;
    }

    public MqttProperties AddUserProperty(string name, string value)
    {
        (UserProperties ??= []).Add(new MqttUserProperty(name, value));
        return this;
    }
}

/// <summary>Property identifiers (section 2.2.2.2).</summary>
internal enum MqttPropertyId : byte
{
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// <summary>Where a property may appear; the will properties of CONNECT are their own scope.</summary>
[Flags]
internal enum MqttPropertyScope : ushort
{
    None = 0,
    Connect = 1 << 0,
    ConnAck = 1 << 1,
    Publish = 1 << 2,
    Will = 1 << 3,
    PubResponse = 1 << 4,
    Subscribe = 1 << 5,
    SubAck = 1 << 6,
    Unsubscribe = 1 << 7,
    UnsubAck = 1 << 8,
    Disconnect = 1 << 9,
    Auth = 1 << 10,
    All = 0x7FF,
}
