using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Windows;

namespace CloudEdge.EdgeAgent.Tests;

public sealed class WindowTests
{
    [Fact]
    public void Welford_statistics_match_a_two_pass_computation()
    {
        var random = new Random(7);
        // A large offset with small noise: where the naive sum-of-squares formula loses its digits.
        var values = Enumerable.Range(0, 5000).Select(_ => 1013.25 + random.NextDouble() * 0.01).ToArray();
        var start = new DateTimeOffset(2026, 11, 21, 18, 0, 0, TimeSpan.Zero);
        var window = new WindowAccumulator("dev-1", SensorKind.Pressure, start, start.AddMinutes(1), 8);
        for (var i = 0; i < values.Length; i++) window.Add(values[i], i == 10 ? 0.9 : 0.1, i == 10, "v1", ReadingTraces.NewTraceParent());

        var mean = values.Average();
        var std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Length);
        Assert.Equal(values.Length, window.Count);
        Assert.Equal(values.Min(), window.Min);
        Assert.Equal(values.Max(), window.Max);
        Assert.Equal(mean, window.Mean, 1e-9);
        Assert.Equal(std, window.StdDev, 1e-9);
        Assert.Equal(0.9, window.MaxScore);
        Assert.Equal(1, window.AnomalyCount);
        Assert.Equal("v1", window.ModelVersion);
        Assert.Equal(8, window.Links.Count());
    }

    [Fact]
    public void Links_are_bounded_and_anomalous_readings_keep_theirs()
    {
        var start = DateTimeOffset.UnixEpoch;
        var window = new WindowAccumulator("dev-1", SensorKind.Vibration, start, start.AddMinutes(1), 4);
        var normal = Enumerable.Range(0, 10).Select(_ => ReadingTraces.NewTraceParent()).ToArray();
        foreach (var tp in normal) window.Add(1, 0.1, false, "v1", tp);
        var anomalous = ReadingTraces.NewTraceParent();
        window.Add(9, 0.99, true, "v1", anomalous);
        var links = window.Links.ToList();
        Assert.Equal(4, links.Count);
        Assert.Contains(anomalous, links);
        Assert.Equal(normal[1..4], links.Where(l => l != anomalous));
    }

    [Fact]
    public void A_single_reading_has_zero_deviation()
    {
        var window = new WindowAccumulator("d", SensorKind.Humidity, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddSeconds(10), 1);
        window.Add(42, 0.2, false, "v2", null);
        Assert.Equal(0, window.StdDev);
        Assert.Equal(42, window.Mean);
        Assert.Empty(window.Links);
    }
}
