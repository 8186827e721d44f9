namespace CloudEdge.DeviceSdk;

/// <summary>An application message, published or received. v5-only fields are dropped on 3.1.1.</summary>
public sealed class MqttMessage
{
    public required string Topic { get; init; }
    public ReadOnlyMemory<byte> Payload { get; init; }
    public MqttQualityOfService QoS { get; init; }
    public bool Retain { get; init; }
    public MqttPayloadFormat PayloadFormat { get; init; }
    public string? ContentType { get; init; }
    public uint? MessageExpiryInterval { get; init; }
    public string? ResponseTopic { get; init; }
    public ReadOnlyMemory<byte>? CorrelationData { get; init; }
    public IReadOnlyList<MqttUserProperty> UserProperties { get; init; } = [];
    /// <summary>Received messages only: the server's DUP flag.</summary>
    public bool Dup { get; init; }

    /// <summary>The first user property with this name, or null.</summary>
    public string? GetUserProperty(string name)
    {
        foreach (var p in UserProperties)
        {
            if (p.Name == name) return p.Value;
        }
        return null;
    }
}
