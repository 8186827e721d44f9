using System.Text.Json;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>What the agent reads from a model's manifest.json (models/README.md).</summary>
public sealed class ModelManifest
{
    public required string Name { get; init; }
    /// <summary>The manifest's own version (e.g. 1.0.0).</summary>
    public required string Version { get; init; }
    public required string File { get; init; }
    public string? Sha256 { get; init; }
    public required string InputName { get; init; }
    public required string OutputName { get; init; }
    public required double Threshold { get; init; }
    public required FeatureSpec Features { get; init; }
    /// <summary>The manifest text as read, kept so an OTA model can be stored beside its bytes.</summary>
    public required string Json { get; init; }

    public static ModelManifest Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        // The Silo may wrap the manifest ({ "sha256": ..., "manifest": {...} }); a file holds it bare.
        var manifest = root.TryGetProperty("manifest", out var inner) && inner.ValueKind == JsonValueKind.Object ? inner : root;
        string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        if (manifest.ValueKind != JsonValueKind.Object) throw new FormatException($"A manifest is a JSON object, not {manifest.ValueKind}.");
        JsonElement Required(string name) => manifest.TryGetProperty(name, out var p) ? p : throw new FormatException($"The manifest has no '{name}'.");
        var threshold = Required("threshold").GetDouble();
        if (!double.IsFinite(threshold)) throw new FormatException("threshold must be a finite number.");
        return new ModelManifest
        {
            Name = Text(manifest, "name") ?? Text(root, "name") ?? "anomaly",
            Version = Text(manifest, "version") ?? Text(root, "version") ?? "unknown",
            File = Text(manifest, "file") ?? "anomaly.onnx",
            Sha256 = (Text(manifest, "sha256") ?? Text(root, "sha256"))?.ToLowerInvariant(),
            InputName = manifest.TryGetProperty("input", out var input) ? Text(input, "name") ?? "features" : "features",
            OutputName = manifest.TryGetProperty("output", out var output) ? Text(output, "name") ?? "score" : "score",
            Threshold = threshold,
            Features = FeatureSpec.Parse(Required("features")),
            Json = manifest.GetRawText(),
        };
    }
}
