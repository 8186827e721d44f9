namespace CloudEdge.DeviceSdk;

/// <summary>One measurement of one sensor. <paramref name="Sequence"/> starts at 1 and grows by 1 per reading per device.</summary>
public sealed record SensorReading(string DeviceId, string Kind, double Value, string Unit, DateTimeOffset Timestamp, long Sequence);

/// <summary>The sensor kinds of the wire contract and the one unit each is reported in.</summary>
public static class SensorKinds
{
    public const string Temperature = "temperature";
    public const string Humidity = "humidity";
    public const string Pressure = "pressure";
    public const string Vibration = "vibration";

    public static IReadOnlyList<string> All { get; } = [Temperature, Humidity, Pressure, Vibration];

    /// <summary>Temperature °C as "C", relative humidity "%RH", pressure "hPa", vibration velocity "mm/s".</summary>
    public static string UnitOf(string kind) => kind switch
    {
        Temperature => "C",
        Humidity => "%RH",
        Pressure => "hPa",
        Vibration => "mm/s",
        _ => throw new ArgumentException($"Unknown sensor kind '{kind}'; expected one of {string.Join(", ", All)}.", nameof(kind)),
    };

    public static bool IsKnown(string kind) => kind is Temperature or Humidity or Pressure or Vibration;
}
