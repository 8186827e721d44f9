using CloudEdge.DeviceSdk;

namespace CloudEdge.Simulator;

public enum AnomalyKind
{
    /// <summary>One reading far off the baseline.</summary>
    Spike,
    /// <summary>The sensor repeats its last value for a while.</summary>
    Stuck,
    /// <summary>The baseline moves by a step and stays there.</summary>
    DriftJump,
}

/// <summary>
/// One sensor's signal: a baseline with a daily cycle and a slow random walk, Gaussian noise on top, and
/// anomalies injected with a fixed probability per reading. Deterministic for a given seed.
/// </summary>
internal sealed class SensorModel
{
    private readonly record struct Profile(double Baseline, double DailyAmplitude, double WalkStep, double Noise, double Spike, double Jump, double Min, double Max, int Decimals);

    private readonly Random _random;
    private readonly Profile _profile;
    private readonly double _anomalyRate;
    private readonly double _phase;
    private double _walk;
    private double _offset;
    private int _stuckFor;
    private double _last;

    public SensorModel(string kind, double anomalyRate, int seed)
    {
        Kind = kind;
        _random = new Random(seed);
        _anomalyRate = anomalyRate;
        _profile = kind switch
        {
            SensorKinds.Temperature => new Profile(21.0, 3.0, 0.02, 0.08, 12.0, 4.0, -40, 85, 2),
            SensorKinds.Humidity => new Profile(45.0, 8.0, 0.05, 0.4, 35.0, 10.0, 0, 100, 1),
            SensorKinds.Pressure => new Profile(1013.25, 1.5, 0.03, 0.1, 25.0, 8.0, 870, 1085, 2),
            SensorKinds.Vibration => new Profile(2.5, 0.4, 0.01, 0.25, 15.0, 3.0, 0, 100, 2),
            _ => throw new ArgumentException($"Unknown sensor kind '{kind}'.", nameof(kind)),
        };
        // Devices should not all peak at the same minute.
        _phase = _random.NextDouble() * 2 * Math.PI;
        _last = _profile.Baseline;
    }

    public string Kind { get; }

    public string Unit => SensorKinds.UnitOf(Kind);

    /// <summary>The next value at <paramref name="at"/>, and the anomaly started by this reading, if any.</summary>
    public (double Value, AnomalyKind? Anomaly) Next(DateTimeOffset at)
    {
        if (_stuckFor > 0)
        {
            _stuckFor--;
            return (_last, null);
        }
        AnomalyKind? anomaly = _random.NextDouble() < _anomalyRate ? (AnomalyKind)_random.Next(3) : null;
        _walk += Gaussian() * _profile.WalkStep;
        // The walk is pulled back gently so a long run does not wander off the sensor's range.
        _walk *= 0.999;
        var day = at.UtcDateTime.TimeOfDay.TotalDays * 2 * Math.PI;
        var value = _profile.Baseline + _offset + _walk + _profile.DailyAmplitude * Math.Sin(day + _phase) + Gaussian() * _profile.Noise;
        switch (anomaly)
        {
            case AnomalyKind.Spike:
                value += (_random.Next(2) == 0 ? -1 : 1) * _profile.Spike * (0.8 + 0.4 * _random.NextDouble());
                break;
            case AnomalyKind.Stuck:
                value = _last;
                _stuckFor = 10 + _random.Next(21);
                break;
            case AnomalyKind.DriftJump:
                var jump = (_random.Next(2) == 0 ? -1 : 1) * _profile.Jump * (0.8 + 0.4 * _random.NextDouble());
                _offset += jump;
                value += jump;
                break;
        }
        value = Math.Round(Math.Clamp(value, _profile.Min, _profile.Max), _profile.Decimals);
        _last = value;
        return (value, anomaly);
    }

    /// <summary>Standard normal variate (Box-Muller).</summary>
    private double Gaussian()
    {
        var u1 = 1.0 - _random.NextDouble();
        var u2 = _random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
