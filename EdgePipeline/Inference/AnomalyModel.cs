using System.Security.Cryptography;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.Onnx;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>
/// A loaded anomaly model: its session, its manifest and two batch runs (a small one for a trickle of readings,
/// a large one for bursts) so scoring allocates nothing. Used by one thread at a time (the pipeline loop).
/// </summary>
public sealed class AnomalyModel : IDisposable
{
    public const int SmallBatch = 16;
    public const int LargeBatch = 256;

    private readonly InferenceSession _session;
    private readonly BatchRun _small;
    private readonly BatchRun _large;

    private AnomalyModel(InferenceSession session, ModelManifest manifest, string name, string version, string sha256)
    {
        _session = session;
        Manifest = manifest;
        Name = name;
        Version = version;
        Sha256 = sha256;
        try
        {
            _small = session.CreateBatchRun(SmallBatch);
            _large = session.CreateBatchRun(LargeBatch);
        }
        catch
        {
            _small?.Dispose();
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
    public static AnomalyModel LoadDirectory(OrtEnvironment environment, string directory, string? name = null, string? version = null)
    {
        var full = Path.GetFullPath(directory);
        var manifest = ModelManifest.Parse(File.ReadAllText(Path.Combine(full, "manifest.json")));
        var bytes = File.ReadAllBytes(Path.Combine(full, manifest.File));
        return Load(environment, bytes, manifest,
            name ?? Path.GetFileName(Path.GetDirectoryName(full.TrimEnd(Path.DirectorySeparatorChar))) ?? manifest.Name,
            version ?? Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)));
    }

    /// <summary>Checks the bytes against the manifest's sha256 and the session's signature against the manifest.</summary>
    public static AnomalyModel Load(OrtEnvironment environment, ReadOnlySpan<byte> bytes, ModelManifest manifest, string name, string version)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (manifest.Sha256 is { } expected && expected != sha256)
        {
            throw new InvalidDataException($"Model bytes have sha256 {sha256}; the manifest says {expected}.");
        }
        var session = environment.OpenSession(bytes, new InferenceSessionOptions { IntraOpThreads = 1, InterOpThreads = 1 });
        try
        {
            if (session.Inputs.Count != 1 || session.Outputs.Count != 1) throw new InvalidDataException("An anomaly model has exactly one input and one output.");
            var input = session.Inputs[0];
            var output = session.Outputs[0];
            if (input.Name != manifest.InputName || output.Name != manifest.OutputName)
            {
                throw new InvalidDataException($"The model's input/output are '{input.Name}'/'{output.Name}'; the manifest says '{manifest.InputName}'/'{manifest.OutputName}'.");
            }
            if (input.ElementType != TensorElementType.Float || input.Shape.Count != 2 || input.Shape[0] != -1 || input.Shape[1] != FeatureSpec.FeatureCount)
            {
                throw new InvalidDataException($"The model's input is {input}; float32 [N, {FeatureSpec.FeatureCount}] is required.");
            }
            if (output.ElementType != TensorElementType.Float || output.Shape.Count != 2 || output.Shape[1] != 1)
            {
                throw new InvalidDataException($"The model's output is {output}; float32 [N, 1] is required.");
            }
            return new AnomalyModel(session, manifest, name, version, sha256);
        }
        catch
        {
            session.Dispose();
            throw;
        }
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
            var take = Math.Min(remaining, remaining <= SmallBatch ? SmallBatch : LargeBatch);
            rows.Slice(done * f, take * f).CopyTo(run.Input<float>(0));
            run.Run();
            run.Output<float>(0)[..take].CopyTo(scores.Slice(done, take));
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
            if (!float.IsFinite(s) || s < 0 || s > 1) throw new InvalidDataException($"Smoke inference gave score {s}; a score in [0, 1] is required.");
        }
    }

    public void Dispose()
    {
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
