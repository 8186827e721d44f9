using System.Globalization;
using System.Text.Json;
using CloudEdge.EdgePipeline.Ingest;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>
/// A model's reference samples (<c>samples.json</c>, written by tools/models/train_anomaly.py): series of one
/// device's readings of one kind with the scores the training script's forward pass gave them. Checking a model
/// computes the features here (the agent's own feature code) and scores them through ONNX Runtime.
/// </summary>
public sealed class ModelSamples
{
    /// <summary>Scores agree when within this distance (float32 forward passes in numpy and ONNX Runtime).</summary>
    public const double Tolerance = 1e-4;

    private readonly IReadOnlyList<Series> _series;

    private ModelSamples(IReadOnlyList<Series> series) => _series = series;

    private sealed record Series(SensorKind Kind, double[] Values, double[] Scores);

    /// <summary>The number of scored readings.</summary>
    public int Count => _series.Sum(s => s.Values.Length);

    public static ModelSamples Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            using var document = JsonDocument.Parse(json.ToArray());
            var series = new List<Series>();
            foreach (var s in document.RootElement.GetProperty("series").EnumerateArray())
            {
                var kindName = s.GetProperty("kind").GetString() ?? "";
                if (!SensorKinds.TryParse(kindName, out var kind)) throw new FormatException($"unknown kind '{kindName}'");
                var values = s.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var scores = s.GetProperty("scores").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                if (values.Length != scores.Length) throw new FormatException($"a {kindName} series has {values.Length} values and {scores.Length} scores");
                series.Add(new Series(kind, values, scores));
            }
            if (series.Count == 0) throw new FormatException("no series");
            return new ModelSamples(series);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelRejectedException(ModelCheckFailure.BadSamples, $"{ModelCheck.SamplesFile} is not usable: {e.Message}", e);
        }
    }

    /// <summary>Throws <see cref="ModelRejectedException"/> (<see cref="ModelCheckFailure.SampleMismatch"/>) unless every sample matches.</summary>
    public void Check(AnomalyModel model)
    {
        const int f = FeatureSpec.FeatureCount;
        var matched = 0;
        var total = 0;
        string? first = null;
        foreach (var series in _series)
        {
            var rows = new float[series.Values.Length * f];
            var history = new ReadingHistory(model.Features.Window);
            for (var i = 0; i < series.Values.Length; i++)
            {
                model.Features.Compute(series.Kind, series.Values[i], history, rows.AsSpan(i * f, f));
                history.Add(series.Values[i]);
            }
            var scores = new float[series.Values.Length];
            model.Score(rows, series.Values.Length, scores);
            for (var i = 0; i < scores.Length; i++)
            {
                total++;
                if (Math.Abs(scores[i] - series.Scores[i]) <= Tolerance) matched++;
                else first ??= string.Create(CultureInfo.InvariantCulture, $"{SensorKinds.Name(series.Kind)}[{i}] scores {scores[i]:G6}, expected {series.Scores[i]:G6}");
            }
        }
        if (matched != total)
        {
            throw new ModelRejectedException(ModelCheckFailure.SampleMismatch, $"{matched}/{total} samples match; first mismatch: {first}.");
        }
    }
}
