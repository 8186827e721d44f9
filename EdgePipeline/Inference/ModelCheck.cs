using System.Text.Json;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>Why a model was refused; <c>check-model</c> prints it as a reason code (e.g. <c>sha256-mismatch</c>).</summary>
public enum ModelCheckFailure
{
    BadManifest,
    MissingFile,
    Sha256Mismatch,
    /// <summary>ONNX Runtime refuses the bytes (not a model, or operators it cannot run).</summary>
    Unloadable,
    /// <summary>The model's inputs/outputs disagree with the manifest or with float32 [N, 8] → [N, 1].</summary>
    Contract,
    SmokeTest,
    BadSamples,
    SampleMismatch,
}

/// <summary>A model refused by <see cref="ModelCheck"/>, with the reason.</summary>
public sealed class ModelRejectedException(ModelCheckFailure reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public ModelCheckFailure Reason { get; } = reason;

    /// <summary>The reason as <c>check-model</c> and OTA failure reports spell it.</summary>
    public string ReasonCode => ReasonCodeOf(Reason);

    public static string ReasonCodeOf(ModelCheckFailure reason) => reason switch
    {
        ModelCheckFailure.BadManifest => "bad-manifest",
        ModelCheckFailure.MissingFile => "missing-file",
        ModelCheckFailure.Sha256Mismatch => "sha256-mismatch",
        ModelCheckFailure.Unloadable => "unloadable-model",
        ModelCheckFailure.Contract => "wrong-shape",
        ModelCheckFailure.SmokeTest => "smoke-test-failed",
        ModelCheckFailure.BadSamples => "bad-samples",
        ModelCheckFailure.SampleMismatch => "sample-mismatch",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };
}

/// <summary>What a check of a model folder found: every sample scored as expected.</summary>
public sealed record ModelCheckReport(string Directory, string Sha256, int Samples);

/// <summary>
/// The one check a model passes before it serves: manifest, sha256, input/output contract, a smoke inference and,
/// when the model ships them, its reference samples. Used by <c>check-model</c> and by OTA before a swap.
/// </summary>
public static class ModelCheck
{
    public const string SamplesFile = "samples.json";

    /// <summary>Loads and checks a model; on success the caller owns the loaded model.</summary>
    public static AnomalyModel Verify(byte[] bytes, ModelManifest manifest, string name, string version, ModelSamples? samples = null)
    {
        var model = AnomalyModel.Load(bytes, manifest, name, version);
        try
        {
            model.SmokeTest();
            samples?.Check(model);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary><c>check-model &lt;dir&gt;</c>: the folder's manifest, model and samples.json, all required.</summary>
    public static ModelCheckReport CheckDirectory(string directory)
    {
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var manifest = ReadManifest(full);
        var bytes = ReadFile(full, manifest.File);
        var samples = ModelSamples.Parse(ReadFile(full, SamplesFile));
        using var model = Verify(bytes, manifest, Path.GetFileName(Path.GetDirectoryName(full)) ?? manifest.Name, Path.GetFileName(full), samples);
        return new ModelCheckReport(full, model.Sha256, samples.Count);
    }

    public static ModelManifest ReadManifest(string directory)
    {
        var text = System.Text.Encoding.UTF8.GetString(ReadFile(directory, "manifest.json"));
        try
        {
            return ModelManifest.Parse(text);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelRejectedException(ModelCheckFailure.BadManifest, $"{Path.Combine(directory, "manifest.json")} is not a usable manifest: {e.Message}", e);
        }
    }

    private static byte[] ReadFile(string directory, string file)
    {
        var path = Path.Combine(directory, file);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ModelRejectedException(ModelCheckFailure.MissingFile, $"{path} does not exist.", e);
        }
    }
}
