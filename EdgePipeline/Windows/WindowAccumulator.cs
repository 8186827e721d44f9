using CloudEdge.EdgePipeline.Ingest;

namespace CloudEdge.EdgePipeline.Windows;

/// <summary>
/// One open tumbling window of one device and kind: count, min, max, mean and population standard deviation
/// (Welford's online update: one pass, no cancellation error), max anomaly score, anomaly count, model version,
/// and a bounded set of the readings' trace contexts for the summary's span links (anomalous readings win a slot).
/// </summary>
internal sealed class WindowAccumulator(string deviceId, SensorKind kind, DateTimeOffset start, DateTimeOffset end, int maxLinks)
{
    private readonly List<(string TraceParent, bool Anomalous)> _links = [];
    private double _m2;

    public string DeviceId { get; } = deviceId;
    public SensorKind Kind { get; } = kind;
    public DateTimeOffset Start { get; } = start;
    public DateTimeOffset End { get; } = end;
    public long Count { get; private set; }
    public double Mean { get; private set; }
    public double Min { get; private set; } = double.PositiveInfinity;
    public double Max { get; private set; } = double.NegativeInfinity;
    public double StdDev => Count > 0 ? Math.Sqrt(_m2 / Count) : 0;
    public double MaxScore { get; private set; }
    public long AnomalyCount { get; private set; }
    public string? ModelVersion { get; private set; }
    public IEnumerable<string> Links => _links.Select(l => l.TraceParent);

    /// <summary>"{device}|{kind}|{start ticks}": one summary per window, enforced by the outbox's unique key.</summary>
    public string Key => KeyOf(DeviceId, Kind, Start);

    public static string KeyOf(string deviceId, SensorKind kind, DateTimeOffset start) => $"{deviceId}|{(int)kind}|{start.UtcTicks}";

    public void Add(double value, double score, bool anomalous, string modelVersion, string? traceParent)
    {
        Count++;
        var delta = value - Mean;
        Mean += delta / Count;
        _m2 += delta * (value - Mean);
        Min = Math.Min(Min, value);
        Max = Math.Max(Max, value);
        MaxScore = Math.Max(MaxScore, score);
        if (anomalous) AnomalyCount++;
        ModelVersion = modelVersion;
        if (traceParent is null || maxLinks <= 0) return;
        if (_links.Count < maxLinks)
        {
            _links.Add((traceParent, anomalous));
        }
        else if (anomalous)
        {
            var normal = _links.FindIndex(l => !l.Anomalous);
            if (normal >= 0) _links[normal] = (traceParent, true);
        }
    }
}
