using System.Text.Json;
using CloudEdge.EdgePipeline.Inference;
using Microsoft.Extensions.Logging;

namespace CloudEdge.EdgePipeline.Ota;

/// <summary>
/// Which model the agent runs across restarts: an OTA model is stored under <c>{data}/models/{name}/{version}/</c>
/// and named in <c>{data}/models/active.json</c> (written last, atomically). Without one, the configured folder.
/// </summary>
public static class ActiveModel
{
    private sealed record Pointer(string Name, string Version);

    public static AnomalyModel Load(string dataDirectory, string configuredDirectory, ILogger? logger = null)
    {
        var pointerPath = Path.Combine(dataDirectory, "models", "active.json");
        if (File.Exists(pointerPath))
        {
            try
            {
                var pointer = JsonSerializer.Deserialize<Pointer>(File.ReadAllText(pointerPath)) ?? throw new InvalidDataException("active.json is empty");
                return LoadChecked(Path.Combine(dataDirectory, "models", pointer.Name, pointer.Version), pointer.Name, pointer.Version);
            }
            catch (Exception e) when (e is IOException or JsonException or InvalidDataException or FormatException or KeyNotFoundException or ModelRejectedException)
            {
                logger?.LogError(e, "The OTA model named in {Pointer} does not load; falling back to {Configured}", pointerPath, configuredDirectory);
            }
        }
        return LoadChecked(configuredDirectory, null, null);
    }

    /// <summary>The same check as OTA and check-model (sha256, contract, smoke inference) before a model serves.</summary>
    private static AnomalyModel LoadChecked(string directory, string? name, string? version)
    {
        var model = AnomalyModel.LoadDirectory(directory, name, version);
        try
        {
            model.SmokeTest();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    internal static void Store(string dataDirectory, string name, string version, byte[] bytes, ModelManifest manifest)
    {
        var directory = Path.Combine(dataDirectory, "models", name, version);
        Directory.CreateDirectory(directory);
        WriteAtomically(Path.Combine(directory, manifest.File), bytes);
        WriteAtomically(Path.Combine(directory, "manifest.json"), System.Text.Encoding.UTF8.GetBytes(manifest.Json));
        WriteAtomically(Path.Combine(dataDirectory, "models", "active.json"), JsonSerializer.SerializeToUtf8Bytes(new Pointer(name, version)));
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
