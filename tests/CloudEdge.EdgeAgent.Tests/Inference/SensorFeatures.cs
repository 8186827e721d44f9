using System.Text.Json;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>
/// The anomaly model's feature vector computed from a manifest's feature spec: the reference the edge agent's
/// feature code follows (models/README.md). One device's readings of one kind, in order.
/// </summary>
internal sealed class SensorFeatures
{
    private readonly JsonElement _spec;

    public SensorFeatures(JsonElement featureSpec) => _spec = featureSpec;

    public int Count => _spec.GetProperty("count").GetInt32();

    public float[] Compute(string kind, IReadOnlyList<double> values)
    {
        var kinds = _spec.GetProperty("kinds").EnumerateArray().Select(k => k.GetString()).ToList();
        var k = kinds.IndexOf(kind);
        Assert.True(k >= 0, $"unknown kind {kind}");
        var center = _spec.GetProperty("center").GetProperty(kind).GetDouble();
        var scale = _spec.GetProperty("scale").GetProperty(kind).GetDouble();
        var minStd = _spec.GetProperty("minStd").GetProperty(kind).GetDouble();
        var window = _spec.GetProperty("window").GetInt32();
        var clip = _spec.GetProperty("clip").GetDouble();

        var f = Count;
        var rows = new float[values.Count * f];
        for (var i = 0; i < values.Count; i++)
        {
            var row = rows.AsSpan(i * f, f);
            var v = values[i];
            row[k] = 1;
            row[4] = (float)Math.Clamp((v - center) / scale, -clip, clip);
            var start = Math.Max(0, i - window);
            var n = i - start;
            if (n >= 2)
            {
                double sum = 0, sumSq = 0;
                for (var j = start; j < i; j++) sum += values[j];
                var mean = sum / n;
                for (var j = start; j < i; j++) sumSq += (values[j] - mean) * (values[j] - mean);
                var std = Math.Sqrt(sumSq / n);
                row[5] = (float)Math.Clamp((v - mean) / Math.Max(std, minStd), -clip, clip);
                row[7] = (float)Math.Clamp(std / scale, 0, clip);
            }
            if (n >= 1) row[6] = (float)Math.Clamp((v - values[i - 1]) / scale, -clip, clip);
        }
        return rows;
    }
}
