using System.Text.Json;
using CloudEdge.EdgePipeline.Ingest;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>
/// The anomaly model's feature vector (models/README.md), with the numbers read from the model's manifest
/// (<c>features</c>): one-hot kind, value_norm, recent_z, delta_norm, recent_std_norm over the device's
/// previous readings of that kind (at most <see cref="Window"/>, newest last).
/// </summary>
public sealed class FeatureSpec
{
    public const int FeatureCount = 8;

    private readonly int[] _kindIndex = new int[SensorKinds.Count];
    private readonly double[] _center = new double[SensorKinds.Count];
    private readonly double[] _scale = new double[SensorKinds.Count];
    private readonly double[] _minStd = new double[SensorKinds.Count];

    private FeatureSpec(int window, double clip)
    {
        Window = window;
        Clip = clip;
    }

    public int Window { get; }
    public double Clip { get; }

    /// <summary>Reads a manifest's <c>features</c> object; refuses a layout this code does not compute.</summary>
    public static FeatureSpec Parse(JsonElement features)
    {
        if (features.GetProperty("count").GetInt32() != FeatureCount)
        {
            throw new FormatException($"The model expects {features.GetProperty("count").GetInt32()} features; this agent computes {FeatureCount}.");
        }
        var window = features.GetProperty("window").GetInt32();
        if (window < 2) throw new FormatException("features.window must be at least 2.");
        var spec = new FeatureSpec(window, features.GetProperty("clip").GetDouble());
        var kinds = features.GetProperty("kinds").EnumerateArray().Select(k => k.GetString()).ToList();
        if (kinds.Count != SensorKinds.Count) throw new FormatException($"The model's one-hot has {kinds.Count} kinds; this agent knows {SensorKinds.Count}.");
        for (var i = 0; i < SensorKinds.Count; i++)
        {
            var kind = (SensorKind)i;
            var name = SensorKinds.Name(kind);
            spec._kindIndex[i] = kinds.IndexOf(name);
            if (spec._kindIndex[i] < 0) throw new FormatException($"The model's features do not cover kind '{name}'.");
            spec._center[i] = features.GetProperty("center").GetProperty(name).GetDouble();
            spec._scale[i] = features.GetProperty("scale").GetProperty(name).GetDouble();
            spec._minStd[i] = features.GetProperty("minStd").GetProperty(name).GetDouble();
            if (!(spec._scale[i] > 0) || !(spec._minStd[i] > 0)) throw new FormatException($"scale and minStd of '{name}' must be positive.");
        }
        return spec;
    }

    /// <summary>Writes the features of <paramref name="value"/> given the history before it (not including it).</summary>
    public void Compute(SensorKind kind, double value, ReadingHistory history, Span<float> row)
    {
        var k = (int)kind;
        var center = _center[k];
        var scale = _scale[k];
        row[..FeatureCount].Clear();
        row[_kindIndex[k]] = 1;
        row[4] = (float)Math.Clamp((value - center) / scale, -Clip, Clip);
        var n = Math.Min(history.Count, Window);
        if (n >= 2)
        {
            var (mean, std) = history.MeanAndStd(n);
            row[5] = (float)Math.Clamp((value - mean) / Math.Max(std, _minStd[k]), -Clip, Clip);
            row[7] = (float)Math.Clamp(std / scale, 0, Clip);
        }
        if (n >= 1) row[6] = (float)Math.Clamp((value - history.Last) / scale, -Clip, Clip);
    }
}

/// <summary>The last values of one device and kind, newest last (a ring at least as long as the model's window).</summary>
public sealed class ReadingHistory(int capacity)
{
    private readonly double[] _values = new double[capacity];
    private int _start;

    public int Count { get; private set; }

    public double Last => _values[(_start + Count - 1) % _values.Length];

    public void Add(double value)
    {
        if (Count < _values.Length)
        {
            _values[(_start + Count) % _values.Length] = value;
            Count++;
        }
        else
        {
            _values[_start] = value;
            _start = (_start + 1) % _values.Length;
        }
    }

    /// <summary>
    /// Population mean and standard deviation of the newest <paramref name="last"/> values, two passes (as the
    /// training script: no cancellation error).
    /// </summary>
    public (double Mean, double Std) MeanAndStd(int last)
    {
        var from = Count - last;
        double sum = 0;
        for (var i = from; i < Count; i++) sum += _values[(_start + i) % _values.Length];
        var mean = sum / last;
        double squares = 0;
        for (var i = from; i < Count; i++)
        {
            var d = _values[(_start + i) % _values.Length] - mean;
            squares += d * d;
        }
        return (mean, Math.Sqrt(squares / last));
    }
}
