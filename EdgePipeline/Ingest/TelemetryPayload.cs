using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>Why a telemetry payload was refused; each maps to a reason code and a metric tag.</summary>
public enum TelemetryError
{
    None = 0,
    /// <summary>Not UTF-8 JSON, or not an object: MQTT 5 reason 0x99 Payload format invalid.</summary>
    MalformedJson,
    /// <summary>Well-formed JSON that breaks the contract (missing field, wrong type, unknown kind, ...): 0x83.</summary>
    InvalidField,
    /// <summary>The payload's deviceId is not the topic's device (or the publisher's user): 0x83.</summary>
    DeviceMismatch,
}

/// <summary>
/// Parses the telemetry wire contract (docs/device-sdk.md) straight from the broker's receive buffer:
/// <c>{"deviceId","kind","value","unit","ts","seq"}</c> plus <c>traceparent</c>/<c>tracestate</c> on MQTT 3.1.1.
/// Unknown fields are ignored so the contract can grow.
/// </summary>
internal static class TelemetryPayload
{
    public const int MaximumDeviceIdLength = 128;

    public static TelemetryError TryParse(ReadOnlySequence<byte> payload, string topicDeviceId, out SensorReading? reading, out string detail)
    {
        reading = null;
        string? deviceId = null, kindName = null, unit = null, traceParent = null, traceState = null;
        double? value = null;
        long? seq = null;
        DateTimeOffset? ts = null;
        try
        {
            var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                detail = "payload is not a JSON object";
                return TelemetryError.MalformedJson;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "deviceId": deviceId = StringOrNull(ref reader); break;
                    case "kind": kindName = StringOrNull(ref reader); break;
                    case "unit": unit = StringOrNull(ref reader); break;
                    case "traceparent": traceParent = StringOrNull(ref reader); break;
                    case "tracestate": traceState = StringOrNull(ref reader); break;
                    case "ts":
                        if (reader.TokenType == JsonTokenType.String
                            && DateTimeOffset.TryParse(reader.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
                        {
                            ts = parsed;
                        }
                        reader.Skip();
                        break;
                    case "value":
                        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var v)) value = v;
                        reader.Skip();
                        break;
                    case "seq":
                        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var s)) seq = s;
                        reader.Skip();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                detail = "payload has content after the JSON object";
                return TelemetryError.MalformedJson;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            detail = "payload is not well-formed UTF-8 JSON: " + e.Message;
            return TelemetryError.MalformedJson;
        }

        if (deviceId is null) return Invalid(out detail, "deviceId is missing or not a string");
        if (deviceId != topicDeviceId)
        {
            detail = $"deviceId '{deviceId}' is not the topic's device '{topicDeviceId}'";
            return TelemetryError.DeviceMismatch;
        }
        if (kindName is null || !SensorKinds.TryParse(kindName, out var kind)) return Invalid(out detail, $"kind '{kindName}' is not one of temperature, humidity, pressure, vibration");
        if (value is not { } finite || !double.IsFinite(finite)) return Invalid(out detail, "value is missing, not a number or not finite");
        if (unit is not null && unit != SensorKinds.Unit(kind)) return Invalid(out detail, $"unit '{unit}' is not {SensorKinds.Unit(kind)} for {kindName}");
        if (ts is not { } timestamp) return Invalid(out detail, "ts is missing or not an ISO 8601 UTC time");
        if (seq is not { } sequence || sequence < 1) return Invalid(out detail, "seq is missing or not a positive integer");
        if (traceParent is not null && !ActivityContext.TryParse(traceParent, traceState, out _))
        {
            // A malformed trace context loses only tracing, never the reading.
            traceParent = null;
            traceState = null;
        }
        reading = new SensorReading(deviceId, kind, finite, timestamp, sequence, traceParent, traceState);
        detail = "";
        return TelemetryError.None;
    }

    /// <summary><c>devices/{deviceId}/telemetry</c> with a valid device id level, or null.</summary>
    public static string? DeviceIdFromTopic(string topic)
    {
        const string prefix = "devices/", suffix = "/telemetry";
        if (!topic.StartsWith(prefix, StringComparison.Ordinal) || !topic.EndsWith(suffix, StringComparison.Ordinal)) return null;
        var length = topic.Length - prefix.Length - suffix.Length;
        if (length < 1 || length > MaximumDeviceIdLength) return null;
        var id = topic.AsSpan(prefix.Length, length);
        return id.IndexOfAny('/', '+', '#') >= 0 || id.Contains('\0') ? null : id.ToString();
    }

    private static string? StringOrNull(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.GetString();
        reader.Skip();
        return null;
    }

    private static TelemetryError Invalid(out string detail, string message)
    {
        detail = message;
        return TelemetryError.InvalidField;
    }
}
