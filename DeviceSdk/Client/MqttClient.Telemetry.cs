
namespace CloudEdge.DeviceSdk;

public sealed partial class MqttClient
{
    /// <summary>
    /// Publishes a reading on <c>devices/{deviceId}/telemetry</c> as the contract's JSON. The publish span's W3C
    /// context travels as user properties on v5 and as <c>traceparent</c>/<c>tracestate</c> JSON fields on 3.1.1.
    /// </summary>
    public Task<MqttPublishResult> PublishReadingAsync(string deviceId, SensorReading reading,
        MqttQualityOfService qos = MqttQualityOfService.AtLeastOnce, CancellationToken cancellationToken = default)
    {
        var topic = TelemetryJson.TopicFor(deviceId);
        ArgumentNullException.ThrowIfNull(reading);
        if (reading.DeviceId != deviceId) throw new ArgumentException($"The reading belongs to '{reading.DeviceId}', not '{deviceId}'.", nameof(reading));
        TelemetryJson.Validate(reading);
        if (qos > MqttQualityOfService.ExactlyOnce) throw new ArgumentOutOfRangeException(nameof(qos));
        var activity = StartPublishActivity(topic, qos);
        activity?.SetTag("cloudedge.device.id", deviceId);
        activity?.SetTag("cloudedge.telemetry.seq", reading.Sequence);
        var v5 = _options.ProtocolVersion == MqttProtocolVersion.V500;
        var (traceParent, traceState) = v5 ? (null, null) : TraceContext(activity);
        var message = new MqttMessage
        {
            Topic = topic,
            Payload = TelemetryJson.Serialize(reading, traceParent, traceState),
            QoS = qos,
            PayloadFormat = MqttPayloadFormat.Utf8,
            ContentType = "application/json",
        };
        return PublishCoreAsync(message, activity, reading, cancellationToken);
    }
}
