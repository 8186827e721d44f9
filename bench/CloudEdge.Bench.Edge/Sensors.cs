using Wire = CloudEdge.DeviceSdk;

namespace CloudEdge.Bench.Edge;

/// <summary>One simulated sensor reading: the device id and the exact MQTT payload our client sends.</summary>
internal readonly record struct Published(string DeviceId, byte[] Payload);

/// <summary>
/// Sensor signals shaped like the simulator's (docs/device-sdk.md: baseline, slow walk, noise, and per reading
/// an anomaly start with the given rate: spike, stuck value or drift jump), serialized by the DeviceSdk client's
/// own <see cref="Wire.TelemetryJson"/> so the bytes are the wire bytes.
/// </summary>
internal sealed class SensorFleet
{
    private static readonly string[] Kinds = ["temperature", "humidity", "pressure", "vibration"];
    private static readonly string[] Units = ["C", "%RH", "hPa", "mm/s"];
    // baseline, walk step, noise, spike, jump, min, max, decimals
    private static readonly (double Baseline, double Walk, double Noise, double Spike, double Jump, double Min, double Max, int Decimals)[] Profiles =
    [
        (21.0, 0.02, 0.08, 12.0, 4.0, -40, 85, 2),
        (45.0, 0.05, 0.4, 35.0, 10.0, 0, 100, 1),
        (1013.25, 0.03, 0.1, 25.0, 8.0, 870, 1085, 2),
        (2.5, 0.01, 0.25, 15.0, 3.0, 0, 100, 2),
    ];

    private readonly Random _random;
    private readonly double _anomalyRate;
    private readonly State[] _states;
    private readonly long[] _seq;

    public SensorFleet(int devices, double anomalyRate, int seed)
    {
        _random = new Random(seed);
        _anomalyRate = anomalyRate;
        _states = new State[devices * Kinds.Length];
        for (var i = 0; i < _states.Length; i++) _states[i] = new State { Last = Profiles[i % Kinds.Length].Baseline };
        _seq = new long[devices];
        Devices = devices;
    }

    public int Devices { get; }
    public long Anomalies { get; private set; }

    public static string DeviceId(int device) => $"sim-{device:D4}";

    /// <summary>One reading of <paramref name="kind"/> (0..3) from <paramref name="device"/> at <paramref name="at"/>.</summary>
    public Published Next(int device, int kind, DateTimeOffset at)
    {
        var state = _states[device * Kinds.Length + kind];
        var p = Profiles[kind];
        double value;
        if (state.StuckFor > 0)
        {
            state.StuckFor--;
            value = state.Last;
        }
        else
        {
            var anomaly = _random.NextDouble() < _anomalyRate ? _random.Next(3) : -1;
            if (anomaly >= 0) Anomalies++;
            state.Walk = (state.Walk + Gaussian() * p.Walk) * 0.999;
            value = p.Baseline + state.Offset + state.Walk + Gaussian() * p.Noise;
            switch (anomaly)
            {
                case 0:
                    value += (_random.Next(2) == 0 ? -1 : 1) * p.Spike * (0.8 + 0.4 * _random.NextDouble());
                    break;
                case 1:
                    value = state.Last;
                    state.StuckFor = 10 + _random.Next(21);
                    break;
                case 2:
                    var jump = (_random.Next(2) == 0 ? -1 : 1) * p.Jump * (0.8 + 0.4 * _random.NextDouble());
                    state.Offset += jump;
                    value += jump;
                    break;
            }
            value = Math.Round(Math.Clamp(value, p.Min, p.Max), p.Decimals);
        }
        state.Last = value;
        var id = DeviceId(device);
        var seq = ++_seq[device];
        return new Published(id, Wire.TelemetryJson.Serialize(new Wire.SensorReading(id, Kinds[kind], value, Units[kind], at, seq)));
    }

    /// <summary>A vibration reading the v1 model flags (a spike far above the baseline).</summary>
    public Published Spike(int device, DateTimeOffset at)
    {
        var id = DeviceId(device);
        var seq = ++_seq[device];
        return new Published(id, Wire.TelemetryJson.Serialize(new Wire.SensorReading(id, "vibration", 40.0, "mm/s", at, seq)));
    }

    private double Gaussian()
    {
        var u1 = 1.0 - _random.NextDouble();
        var u2 = _random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    private sealed class State
    {
        public double Last;
        public double Walk;
        public double Offset;
        public int StuckFor;
    }
}
