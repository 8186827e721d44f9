using System.Security.Cryptography;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>The production feature code and model wrapper against the training script's reference samples.</summary>
[Collection(OrtCollection.Name)]
public sealed class FeatureTests
{
    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    public void Features_match_the_training_script(string version)
    {
        var spec = ModelFiles.Manifest(version).Features;
        var row = new float[FeatureSpec.FeatureCount];
        var compared = 0;
        foreach (var series in ModelFiles.Samples(version).GetProperty("series").EnumerateArray())
        {
            Assert.True(SensorKinds.TryParse(series.GetProperty("kind").GetString(), out var kind));
            var history = new ReadingHistory(64);
            var expected = series.GetProperty("features").EnumerateArray().ToArray();
            var i = 0;
            foreach (var value in series.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()))
            {
                spec.Compute(kind, value, history, row);
                history.Add(value);
                var reference = expected[i].EnumerateArray().Select(e => e.GetSingle()).ToArray();
                for (var j = 0; j < FeatureSpec.FeatureCount; j++)
                {
                    Assert.True(Math.Abs(reference[j] - row[j]) <= 1e-4, $"{kind}[{i}] feature {j}: {row[j]} vs {reference[j]}");
                    compared++;
                }
                i++;
            }
        }
        Assert.Equal(4 * 96 * FeatureSpec.FeatureCount, compared);
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    public void Batched_scores_match_the_reference_and_flag_exactly_the_injected_anomalies(string version)
    {
        using var model = AnomalyModel.LoadDirectory(ModelFiles.Directory(version));
        Assert.Equal(version, model.Version);
        Assert.Equal("anomaly", model.Name);
        var anomalies = 0;
        foreach (var series in ModelFiles.Samples(version).GetProperty("series").EnumerateArray())
        {
            SensorKinds.TryParse(series.GetProperty("kind").GetString(), out var kind);
            var values = series.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var reference = series.GetProperty("scores").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var rows = new float[values.Length * FeatureSpec.FeatureCount];
            var history = new ReadingHistory(64);
            for (var i = 0; i < values.Length; i++)
            {
                model.Features.Compute(kind, values[i], history, rows.AsSpan(i * FeatureSpec.FeatureCount, FeatureSpec.FeatureCount));
                history.Add(values[i]);
            }
            // 96 rows: one large batch run; then the same rows through the small run in slices of 5.
            var scores = new float[values.Length];
            model.Score(rows, values.Length, scores);
            var sliced = new float[values.Length];
            for (var start = 0; start < values.Length; start += 5)
            {
                var n = Math.Min(5, values.Length - start);
                model.Score(rows.AsSpan(start * FeatureSpec.FeatureCount), n, sliced.AsSpan(start, n));
            }
            for (var i = 0; i < values.Length; i++)
            {
                Assert.True(Math.Abs(scores[i] - reference[i]) <= 1e-4, $"{kind}[{i}]: {scores[i]} vs {reference[i]}");
                Assert.Equal(scores[i], sliced[i], 1e-6);
            }
            foreach (var index in series.GetProperty("anomalyIndices").EnumerateArray().Select(e => e.GetInt32()))
            {
                Assert.True(scores[index] >= model.Threshold);
                anomalies++;
            }
        }
        Assert.Equal(12, anomalies);
        model.SmokeTest();
    }

    [Fact]
    public void A_model_whose_bytes_do_not_match_the_manifest_is_refused()
    {
        var manifest = ModelFiles.Manifest("v1");
        var bytes = File.ReadAllBytes(Path.Combine(ModelFiles.Directory("v1"), "anomaly.onnx"));
        bytes[^5] ^= 0xFF;
        var e = Assert.Throws<ModelRejectedException>(() => AnomalyModel.Load(bytes, manifest, "anomaly", "v1"));
        Assert.Equal(ModelCheckFailure.Sha256Mismatch, e.Reason);
        Assert.Contains("sha256", e.Message);

        // Garbage whose sha256 is declared correctly still fails to load: ONNX Runtime refuses it.
        var garbage = RandomNumberGenerator.GetBytes(2048);
        var lying = ModelManifest.Parse(manifest.Json.Replace(manifest.Sha256!, Convert.ToHexStringLower(SHA256.HashData(garbage))));
        var refused = Assert.Throws<ModelRejectedException>(() => AnomalyModel.Load(garbage, lying, "anomaly", "v1"));
        Assert.Equal(ModelCheckFailure.Unloadable, refused.Reason);
        Assert.IsType<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(refused.InnerException);
    }

    [Fact]
    public void A_manifest_with_another_feature_layout_is_refused()
    {
        var json = ModelFiles.Manifest("v1").Json.Replace("\"count\": 8", "\"count\": 9");
        Assert.Throws<FormatException>(() => ModelManifest.Parse(json));
    }
}
