using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace CloudEdge.DeviceSdk;

/// <summary>A reading as it travels, with the trace context that came with it (user properties on v5, JSON fields on 3.1.1).</summary>
public sealed record TelemetryEnvelope(SensorReading Reading, string? TraceParent, string? TraceState);

/// <summary>
/// The telemetry wire contract (docs/device-sdk.md): topic <c>devices/{deviceId}/telemetry</c>, payload UTF-8 JSON
/// <c>{"deviceId","kind","value","unit","ts","seq"}</c> plus <c>traceparent</c>/<c>tracestate</c> on MQTT 3.1.1.
/// </summary>
public static class TelemetryJson
{
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static string TopicFor(string deviceId)
    {
        ValidateDeviceId(deviceId);
        return $"devices/{deviceId}/telemetry";
    }

    /// <summary>Device ids are one topic level: non-empty, at most 128 characters, no '/', '+', '#' or U+0000.</summary>
    public static void ValidateDeviceId(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        if (deviceId.Length is 0 or > 128 || deviceId.AsSpan().IndexOfAny("/+#\0") >= 0)
        {
            throw new ArgumentException($"Device id '{deviceId}' must be 1-128 characters without '/', '+', '#' or U+0000.", nameof(deviceId));
        }
    }

    /// <summary>Checks a reading against the contract; the message says which field is wrong.</summary>
    public static void Validate(SensorReading reading)
    {
        ArgumentNullException.ThrowIfNull(reading);
        ValidateDeviceId(reading.DeviceId);
        var unit = SensorKinds.UnitOf(reading.Kind);
        if (reading.Unit != unit) throw new ArgumentException($"A {reading.Kind} reading is in '{unit}', not '{reading.Unit}'.", nameof(reading));
        if (!double.IsFinite(reading.Value)) throw new ArgumentException($"Value {reading.Value} is not a finite number.", nameof(reading));
        if (reading.Sequence < 1) throw new ArgumentException($"Sequence {reading.Sequence} must be 1 or more.", nameof(reading));
    }

    public static byte[] Serialize(SensorReading reading, string? traceParent = null, string? traceState = null)
    {
        Validate(reading);
        var buffer = new ArrayBufferWriter<byte>(192);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("deviceId", reading.DeviceId);
            json.WriteString("kind", reading.Kind);
            json.WriteNumber("value", reading.Value);
            json.WriteString("unit", reading.Unit);
            json.WriteString("ts", reading.Timestamp.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture));
            json.WriteNumber("seq", reading.Sequence);
            if (traceParent is not null)
            {
                json.WriteString("traceparent", traceParent);
                if (!string.IsNullOrEmpty(traceState)) json.WriteString("tracestate", traceState);
            }
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses a payload; a payload that breaks the contract is a <see cref="FormatException"/> naming the field.</summary>
    public static TelemetryEnvelope Parse(ReadOnlySpan<byte> payload)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException("Telemetry payload is not a JSON object.");
            var ts = Required(root, "ts").GetString()!;
            if (!DateTimeOffset.TryParseExact(ts, TimestampFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var timestamp))
            {
                throw new FormatException($"\"ts\" '{ts}' is not {TimestampFormat} in UTC.");
            }
            var reading = new SensorReading(
                Required(root, "deviceId").GetString()!,
                Required(root, "kind").GetString()!,
                Required(root, "value").GetDouble(),
                Required(root, "unit").GetString()!,
                timestamp,
                Required(root, "seq").GetInt64());
            try
            {
                Validate(reading);
            }
            catch (ArgumentException e)
            {
                throw new FormatException(e.Message, e);
            }
            return new TelemetryEnvelope(reading,
                root.TryGetProperty("traceparent", out var tp) ? tp.GetString() : null,
                root.TryGetProperty("tracestate", out var ts2) ? ts2.GetString() : null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException($"Telemetry payload is not valid: {e.Message}", e);
        }
    }

    private static JsonElement Required(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : throw new FormatException($"Telemetry payload lacks \"{name}\".");
}
