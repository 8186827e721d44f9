using System.Security.Cryptography;
using System.Text.Json;
using CloudEdge.EdgePipeline.Inference;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>The committed anomaly models (models/anomaly/v1, v2), opened by ONNX Runtime as the agent opens them.</summary>
[Collection(OrtCollection.Name)]
public sealed class AnomalyModelTests
{
    /// <summary>Every folder under models/anomaly: a model added there is checked without touching this file.</summary>
    public static TheoryData<string> Versions() => new(ModelFiles.Versions());

    [Fact]
    public void Two_versions_ship_for_over_the_air_updates()
    {
        Assert.Equal(["v1", "v2"], ModelFiles.Versions().Take(2));
        var v1 = ModelFiles.ManifestJson("v1");
        var v2 = ModelFiles.ManifestJson("v2");
        Assert.NotEqual(v1.GetProperty("sha256").GetString(), v2.GetProperty("sha256").GetString());
        Assert.NotEqual(v1.GetProperty("threshold").GetDouble(), v2.GetProperty("threshold").GetDouble());
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void Manifest_matches_the_model_file_and_its_signature(string folder)
    {
        var manifest = ModelFiles.ManifestJson(folder);
        Assert.Equal("cloudedge-anomaly", manifest.GetProperty("name").GetString());
        // Folder vN holds major version N.
        Assert.StartsWith(folder[1..] + ".", manifest.GetProperty("version").GetString());
        var bytes = File.ReadAllBytes(ModelFiles.ModelPath(folder));
        Assert.True(bytes.Length < 64 * 1024, "models must stay small enough to commit and ship over the air");
        Assert.Equal(manifest.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)));

        using var session = new InferenceSession(bytes);
        var (inputName, input) = Assert.Single(session.InputMetadata);
        var (outputName, output) = Assert.Single(session.OutputMetadata);
        AssertSignature(manifest.GetProperty("input"), inputName, input);
        AssertSignature(manifest.GetProperty("output"), outputName, output);
        Assert.Equal(manifest.GetProperty("features").GetProperty("count").GetInt32(), input.Dimensions[1]);
        Assert.Equal(manifest.GetProperty("features").GetProperty("layout").GetArrayLength(), input.Dimensions[1]);
        Assert.Equal("features: Float[N, 8]", AnomalyModel.Describe(inputName, input));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void Features_computed_by_the_reference_code_match_the_training_script(string folder)
    {
        var features = new SensorFeatures(ModelFiles.ManifestJson(folder).GetProperty("features"));
        foreach (var series in ModelFiles.Samples(folder).GetProperty("series").EnumerateArray())
        {
            var values = series.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var computed = features.Compute(series.GetProperty("kind").GetString()!, values);
            var expected = series.GetProperty("features").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(v => v.GetSingle()).ToArray();
            Assert.Equal(expected.Length, computed.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - computed[i]) <= 1e-4, $"feature {i % features.Count} of reading {i / features.Count}: {computed[i]} vs {expected[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void Normal_readings_score_below_the_threshold_and_injected_anomalies_above(string folder)
    {
        var manifest = ModelFiles.ManifestJson(folder);
        var threshold = manifest.GetProperty("threshold").GetDouble();
        var window = manifest.GetProperty("features").GetProperty("window").GetInt32();
        var features = new SensorFeatures(manifest.GetProperty("features"));
        using var session = new InferenceSession(ModelFiles.ModelPath(folder));

        var judged = 0;
        var anomaliesSeen = 0;
        foreach (var series in ModelFiles.Samples(folder).GetProperty("series").EnumerateArray())
        {
            var kind = series.GetProperty("kind").GetString()!;
            var values = series.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var anomalies = series.GetProperty("anomalyIndices").EnumerateArray().Select(v => v.GetInt32()).ToHashSet();
            var reference = series.GetProperty("scores").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var rows = features.Compute(kind, values);

            var scores = Assert.Single(TestTensor.Run(session, [new TestTensor(TensorElementType.Float, [values.Length, features.Count], rows)]));
            Assert.Equal([values.Length, 1L], scores.Shape);
            var s = scores.GetData<float>();
            for (var i = 0; i < values.Length; i++)
            {
                // Same model, same features: ONNX Runtime agrees with the training script's numpy forward pass.
                Assert.True(Math.Abs(s[i] - reference[i]) <= 1e-4, $"{kind}[{i}]: {s[i]} vs numpy {reference[i]}");
                if (i < window) continue; // the device's window is still filling
                judged++;
                if (anomalies.Contains(i))
                {
                    anomaliesSeen++;
                    Assert.True(s[i] >= threshold, $"{kind}[{i}] = {values[i]} is an injected anomaly but scores {s[i]} < {threshold}");
                }
                else
                {
                    Assert.True(s[i] < threshold, $"{kind}[{i}] = {values[i]} is normal but scores {s[i]} >= {threshold}");
                }
            }
        }
        Assert.True(judged >= 200);
        Assert.Equal(12, anomaliesSeen); // three per sensor kind
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void Out_of_range_readings_from_the_simulator_kinds_are_flagged(string folder)
    {
        // Readings made here, not by the training script: a steady device, then one reading far off.
        var manifest = ModelFiles.ManifestJson(folder);
        var threshold = manifest.GetProperty("threshold").GetDouble();
        var features = new SensorFeatures(manifest.GetProperty("features"));
        using var session = new InferenceSession(ModelFiles.ModelPath(folder));
        (string Kind, double Normal, double Noise, double Spike)[] cases =
        [
            ("temperature", 24.0, 0.1, 38.0),
            ("humidity", 45.0, 0.5, 95.0),
            ("pressure", 1013.0, 0.2, 980.0),
            ("vibration", 1.2, 0.1, 9.0),
        ];
        foreach (var (kind, normal, noise, spike) in cases)
        {
            var values = Enumerable.Range(0, 40).Select(i => normal + noise * Math.Sin(i * 1.7)).Append(spike).ToArray();
            var input = new TestTensor(TensorElementType.Float, [values.Length, features.Count], features.Compute(kind, values));
            var scores = Assert.Single(TestTensor.Run(session, [input])).GetData<float>();
            Assert.True(scores[^1] >= threshold, $"{kind} spike to {spike} scores {scores[^1]}");
            Assert.True(scores[^2] < threshold, $"{kind} steady reading scores {scores[^2]}");
        }
    }

    private static void AssertSignature(JsonElement expected, string name, NodeMetadata actual)
    {
        Assert.Equal(expected.GetProperty("name").GetString(), name);
        Assert.Equal("float32", expected.GetProperty("elementType").GetString());
        Assert.True(actual.IsTensor);
        Assert.Equal(TensorElementType.Float, actual.ElementDataType);
        var dims = expected.GetProperty("shape").EnumerateArray().ToArray();
        Assert.Equal(dims.Length, actual.Dimensions.Length);
        for (var i = 0; i < dims.Length; i++)
        {
            if (dims[i].ValueKind == JsonValueKind.String)
            {
                Assert.Equal(-1, actual.Dimensions[i]);
                Assert.Equal(dims[i].GetString(), actual.SymbolicDimensions[i]);
            }
            else
            {
                Assert.Equal(dims[i].GetInt64(), actual.Dimensions[i]);
            }
        }
    }
}
