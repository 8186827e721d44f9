using System.Security.Cryptography;
using CloudEdge.EdgePipeline.Ingest;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>
/// A loaded anomaly model: its ONNX Runtime session, its manifest and two bound batches (a small one for a trickle
/// of readings, a large one for bursts) so scoring allocates nothing. Used by one thread at a time (the pipeline loop).
/// </summary>
public sealed class AnomalyModel : IDisposable
{
    public const int SmallBatch = 16;
    public const int LargeBatch = 256;

    private readonly InferenceSession _session;
    private readonly BoundBatch _small;
    private readonly BoundBatch _large;

    private AnomalyModel(InferenceSession session, ModelManifest manifest, string name, string version, string sha256)
    {
        _session = session;
        Manifest = manifest;
        Name = name;
        Version = version;
        Sha256 = sha256;
        _small = new BoundBatch(session, manifest.InputName, manifest.OutputName, SmallBatch, FeatureSpec.FeatureCount, 1);
        try
        {
            _large = new BoundBatch(session, manifest.InputName, manifest.OutputName, LargeBatch, FeatureSpec.FeatureCount, 1);
        }
        catch
        {
            _small.Dispose();
            throw;
        }
    }

    /// <summary>The deployed name (e.g. anomaly), as the Silo's desired properties name it.</summary>
    public string Name { get; }
    /// <summary>The deployed version (e.g. v1): what summaries and alerts report as modelVersion.</summary>
    public string Version { get; }
    public string Sha256 { get; }
    public ModelManifest Manifest { get; }
    public FeatureSpec Features => Manifest.Features;
    public double Threshold => Manifest.Threshold;

    /// <summary>Loads <c>manifest.json</c> and its model from a folder such as models/anomaly/v1 (name and version from the path).</summary>
    public static AnomalyModel LoadDirectory(string directory, string? name = null, string? version = null)
    {
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var manifest = ModelCheck.ReadManifest(full);
        var bytes = File.ReadAllBytes(Path.Combine(full, manifest.File));
        return Load(bytes, manifest,
            name ?? Path.GetFileName(Path.GetDirectoryName(full)) ?? manifest.Name,
            version ?? Path.GetFileName(full));
    }

    /// <summary>
    /// Checks the bytes against the manifest's sha256 and the session's signature against the manifest; throws
    /// <see cref="ModelRejectedException"/> (with its reason) when either disagrees or ONNX Runtime refuses the bytes.
    /// </summary>
    public static AnomalyModel Load(byte[] bytes, ModelManifest manifest, string name, string version)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (manifest.Sha256 is { } expected && expected != sha256)
        {
            throw new ModelRejectedException(ModelCheckFailure.Sha256Mismatch, $"Model bytes have sha256 {sha256}; the manifest says {expected}.");
        }
        InferenceSession session;
        using (var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR })
        {
            try
            {
                session = new InferenceSession(bytes, options);
            }
            catch (OnnxRuntimeException e)
            {
                throw new ModelRejectedException(ModelCheckFailure.Unloadable, $"ONNX Runtime refuses the model: {e.Message}", e);
            }
        }
        try
        {
            CheckContract(session, manifest);
            return new AnomalyModel(session, manifest, name, version, sha256);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static void CheckContract(InferenceSession session, ModelManifest manifest)
    {
        if (session.InputNames.Count != 1 || session.OutputNames.Count != 1)
        {
            throw new ModelRejectedException(ModelCheckFailure.Contract, $"An anomaly model has exactly one input and one output; this one has {session.InputNames.Count} and {session.OutputNames.Count}.");
        }
        var (inputName, input) = session.InputMetadata.Single();
        var (outputName, output) = session.OutputMetadata.Single();
        if (inputName != manifest.InputName || outputName != manifest.OutputName)
        {
            throw new ModelRejectedException(ModelCheckFailure.Contract, $"The model's input/output are '{inputName}'/'{outputName}'; the manifest says '{manifest.InputName}'/'{manifest.OutputName}'.");
        }
        if (!IsFloatMatrix(input, FeatureSpec.FeatureCount))
        {
            throw new ModelRejectedException(ModelCheckFailure.Contract, $"The model's input is {Describe(inputName, input)}; float32 [N, {FeatureSpec.FeatureCount}] is required.");
        }
        if (!IsFloatMatrix(output, 1))
        {
            throw new ModelRejectedException(ModelCheckFailure.Contract, $"The model's output is {Describe(outputName, output)}; float32 [N, 1] is required.");
        }
    }

    // The batch dimension must be free (-1): the agent binds 16 and 256 rows.
    private static bool IsFloatMatrix(NodeMetadata node, int columns) =>
        node.IsTensor && node.ElementDataType == TensorElementType.Float && node.Dimensions is [-1, var c] && c == columns;

    internal static string Describe(string name, NodeMetadata node)
    {
        if (!node.IsTensor) return $"{name}: {node.OnnxValueType}";
        var dims = node.Dimensions.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture)
            : node.SymbolicDimensions[i] is { Length: > 0 } symbol ? symbol : "?");
        return $"{name}: {node.ElementDataType}[{string.Join(", ", dims)}]";
    }

    /// <summary>Scores <paramref name="count"/> rows of <see cref="FeatureSpec.FeatureCount"/> features.</summary>
    public void Score(ReadOnlySpan<float> rows, int count, Span<float> scores)
    {
        const int f = FeatureSpec.FeatureCount;
        var done = 0;
        while (done < count)
        {
            var remaining = count - done;
            var run = remaining <= SmallBatch ? _small : _large;
            var take = Math.Min(remaining, run.Rows);
            rows.Slice(done * f, take * f).CopyTo(run.Input);
            run.Run();
            run.Output[..take].CopyTo(scores.Slice(done, take));
            done += take;
        }
    }

    /// <summary>
    /// A smoke inference before the model takes traffic: a steady series of every kind and one far-off reading
    /// each must give finite scores in [0, 1]. Throws when the model is unusable.
    /// </summary>
    public void SmokeTest()
    {
        const int f = FeatureSpec.FeatureCount;
        var rows = new float[SensorKinds.Count * 2 * f];
        var n = 0;
        for (var k = 0; k < SensorKinds.Count; k++)
        {
            var kind = (SensorKind)k;
            var history = new ReadingHistory(Features.Window);
            for (var i = 0; i < Features.Window; i++) history.Add(10 + Math.Sin(i));
            Features.Compute(kind, 10.2, history, rows.AsSpan(n++ * f, f));
            Features.Compute(kind, 1000, history, rows.AsSpan(n++ * f, f));
        }
        var scores = new float[n];
        Score(rows, n, scores);
        foreach (var s in scores)
        {
            if (!float.IsFinite(s) || s < 0 || s > 1) throw new ModelRejectedException(ModelCheckFailure.SmokeTest, $"Smoke inference gave score {s}; a score in [0, 1] is required.");
        }
    }

    public void Dispose()
    {
        // The batches first: each refuses to run from then on, before the session they are bound to goes.
        _small.Dispose();
        _large.Dispose();
        _session.Dispose();
    }
}

/// <summary>
/// The running model, swapped atomically by OTA. The pipeline loop reads <see cref="Current"/> once per batch, so
/// readings in flight finish on the session they started on; a replaced model is disposed by the loop between
/// batches (<see cref="DisposeRetired"/>), never under a run.
/// </summary>
public sealed class ModelSlot(AnomalyModel initial) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<AnomalyModel> _retired = [];
    private AnomalyModel _current = initial;

    public AnomalyModel Current => Volatile.Read(ref _current);

    public event Action<AnomalyModel>? Swapped;

    public AnomalyModel Swap(AnomalyModel next)
    {
        AnomalyModel previous;
        lock (_gate)
        {
            previous = _current;
            Volatile.Write(ref _current, next);
            _retired.Add(previous);
        }
        Swapped?.Invoke(next);
        return previous;
    }

    /// <summary>Called by the only user of the models between two batches.</summary>
    public void DisposeRetired()
    {
        AnomalyModel[] retired;
        lock (_gate)
        {
            if (_retired.Count == 0) return;
            retired = [.. _retired];
            _retired.Clear();
        }
        foreach (var model in retired) model.Dispose();
    }

    public void Dispose()
    {
        DisposeRetired();
        _current.Dispose();
    }
}
