using System.Text.Json;

namespace CloudEdge.Onnx.Tests;

internal static class ModelFiles
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "models", "anomaly");

    /// <summary>The version folders (v1, v2, ...) in version order.</summary>
    public static IEnumerable<string> Versions() =>
        System.IO.Directory.GetDirectories(Root, "v*").Select(Path.GetFileName).OfType<string>()
            .Where(n => int.TryParse(n[1..], out _)).OrderBy(n => int.Parse(n[1..]));

    public static string Directory(string version) => Path.Combine(AppContext.BaseDirectory, "models", "anomaly", version);

    public static string ModelPath(string version) => Path.Combine(Directory(version), "anomaly.onnx");

    public static JsonElement Manifest(string version) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory(version), "manifest.json"))).RootElement;

    public static JsonElement Samples(string version) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory(version), "samples.json"))).RootElement;
}
