using Wire = CloudEdge.DeviceSdk;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>The sensor kinds of the telemetry contract (docs/device-sdk.md), in the models' one-hot order.</summary>
public enum SensorKind
{
    Temperature = 0,
    Humidity = 1,
    Pressure = 2,
    Vibration = 3,
}

/// <summary>
/// The kinds' names and units come from the device SDK, which owns the wire contract (docs/device-sdk.md); this
/// maps them to the models' one-hot order.
/// </summary>
internal static class SensorKinds
{
    public const int Count = 4;

    private static readonly string[] Names = [Wire.SensorKinds.Temperature, Wire.SensorKinds.Humidity, Wire.SensorKinds.Pressure, Wire.SensorKinds.Vibration];
    private static readonly string[] Units = [.. Names.Select(Wire.SensorKinds.UnitOf)];

    public static string Name(SensorKind kind) => Names[(int)kind];

    public static string Unit(SensorKind kind) => Units[(int)kind];

    public static bool TryParse(ReadOnlySpan<char> name, out SensorKind kind)
    {
        for (var i = 0; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i]))
            {
                kind = (SensorKind)i;
                return true;
            }
        }
        kind = default;
        return false;
    }
}

/// <summary>One validated reading. <see cref="ReceivedAt"/> is the gateway's clock: windows are in gateway time.</summary>
public sealed record SensorReading(
    string DeviceId,
    SensorKind Kind,
    double Value,
    DateTimeOffset Timestamp,
    long Seq,
    string? TraceParent,
    string? TraceState)
{
    public DateTimeOffset ReceivedAt { get; init; }
}
