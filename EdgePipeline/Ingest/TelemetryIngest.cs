using System.Diagnostics;
using CloudEdge.Mqtt;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>
/// The broker hook for <c>devices/{deviceId}/telemetry</c>: validates each reading straight from the receive
/// buffer, takes its trace context (v5 user properties, else the 3.1.1 JSON fields) and hands it to the pipeline.
/// A QoS 1/2 PUBLISH is acknowledged only after the reading is committed to the journal. Bad payloads are counted
/// and refused: 0x99 (not JSON) or 0x83 (breaks the contract); the broker does not route them. Other topics pass.
/// </summary>
public sealed class TelemetryIngest(TelemetryPipeline pipeline, EdgeTelemetry telemetry, ILogger<TelemetryIngest>? logger = null) : IMqttPublishInterceptor
{
    private readonly ILogger _logger = logger ?? (ILogger)NullLogger.Instance;

    public async ValueTask<MqttReasonCode> InterceptAsync(MqttPublishContext context, CancellationToken cancellationToken)
    {
        if (!context.Topic.StartsWith("devices/", StringComparison.Ordinal) || !context.Topic.EndsWith("/telemetry", StringComparison.Ordinal))
        {
            return MqttReasonCode.Success;
        }
        var deviceId = TelemetryPayload.DeviceIdFromTopic(context.Topic);
        if (deviceId is null) return Reject(TelemetryError.InvalidField, "topic_invalid", context, "the topic's device level is not a device id");
        if (context.Retain) return Reject(TelemetryError.InvalidField, "retained", context, "telemetry is never retained");

        var error = TelemetryPayload.TryParse(context.Payload, deviceId, out var reading, out var detail);
        if (error != TelemetryError.None)
        {
            return Reject(error, error switch
            {
                TelemetryError.MalformedJson => "malformed_json",
                TelemetryError.DeviceMismatch => "device_mismatch",
                _ => "invalid_field",
            }, context, detail);
        }
        var accepted = reading!;
        if (context.Properties?.GetUserProperty("traceparent") is { } traceParent && ActivityContext.TryParse(traceParent, context.Properties.GetUserProperty("tracestate"), out _))
        {
            accepted = accepted with { TraceParent = traceParent, TraceState = context.Properties.GetUserProperty("tracestate") };
        }

        using var span = EdgeTelemetry.Source.HasListeners()
            ? EdgeTelemetry.Source.StartActivity("edge.ingest", ActivityKind.Consumer,
                accepted.TraceParent is { } tp && ActivityContext.TryParse(tp, accepted.TraceState, isRemote: true, out var parent) ? parent : context.Activity?.Context ?? default)
            : null;
        span?.SetTag("cloudedge.device.id", deviceId);
        span?.SetTag("cloudedge.telemetry.seq", accepted.Seq);
        span?.SetTag("messaging.mqtt.qos", (int)context.QoS);

        var result = await pipeline.AcceptAsync(accepted, context.QoS != MqttQualityOfService.AtMostOnce, cancellationToken).ConfigureAwait(false);
        span?.SetTag("cloudedge.ingest.result", result.ToString());
        switch (result)
        {
            case AcceptResult.Accepted:
            case AcceptResult.Duplicate:
                return MqttReasonCode.Success;
            case AcceptResult.Full:
                span?.SetStatus(ActivityStatusCode.Error, "ingest queue full");
                return MqttReasonCode.QuotaExceeded;
            default:
                span?.SetStatus(ActivityStatusCode.Error, "pipeline unavailable");
                return MqttReasonCode.UnspecifiedError;
        }
    }

    private MqttReasonCode Reject(TelemetryError error, string reason, MqttPublishContext context, string detail)
    {
        telemetry.ReadingsRejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
        _logger.LogInformation("Telemetry from {ClientId} on {Topic} refused ({Reason}): {Detail}", context.ClientId, context.Topic, reason, detail);
        return error == TelemetryError.MalformedJson ? MqttReasonCode.PayloadFormatInvalid : MqttReasonCode.ImplementationSpecificError;
    }
}
