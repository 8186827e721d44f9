using System.Text.Json;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Uplink;
using Microsoft.ML.OnnxRuntime;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>A private directory under the temp folder, deleted at the end.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cloudedge-edge-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// The process's one ONNX Runtime environment, created before any session: fatal errors only, since tests provoke
/// errors on purpose and ONNX Runtime would also print each to stderr.
/// </summary>
public sealed class OrtFixture
{
    public OrtFixture()
    {
        var options = new EnvironmentCreationOptions { logId = "CloudEdge.EdgeAgent.Tests", logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        Environment = OrtEnv.IsCreated ? OrtEnv.Instance() : OrtEnv.CreateInstanceWithOptions(ref options);
    }

    public OrtEnv Environment { get; }
}

[CollectionDefinition(Name)]
public sealed class OrtCollection : ICollectionFixture<OrtFixture>
{
    public const string Name = "ONNX Runtime";
}

internal static class ModelFiles
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "models", "anomaly");

    public static string Directory(string version) => Path.Combine(Root, version);

    public static string ModelPath(string version) => Path.Combine(Directory(version), "anomaly.onnx");

    /// <summary>The version folders (v1, v2, ...) in version order.</summary>
    public static IEnumerable<string> Versions() =>
        System.IO.Directory.GetDirectories(Root, "v*").Select(Path.GetFileName).OfType<string>()
            .Where(n => int.TryParse(n[1..], out _)).OrderBy(n => int.Parse(n[1..]));

    public static JsonElement ManifestJson(string version) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory(version), "manifest.json"))).RootElement;

    public static JsonElement Samples(string version) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory(version), "samples.json"))).RootElement;

    public static ModelManifest Manifest(string version) => ModelManifest.Parse(File.ReadAllText(Path.Combine(Directory(version), "manifest.json")));
}


/// <summary>The real pipeline (SQLite in a temp folder, the committed model in ONNX Runtime) on a manual clock.</summary>
internal sealed class PipelineHarness : IAsyncDisposable
{
    private PipelineHarness(string dataDirectory, ManualTimeProvider time, EdgePipelineOptions options, OutboxOptions outboxOptions, string modelVersion)
    {
        DataDirectory = dataDirectory;
        Time = time;
        Options = options;
        Telemetry = new EdgeTelemetry();
        Outbox = new OutboxStore(dataDirectory, outboxOptions, Telemetry);
        Models = new ModelSlot(AnomalyModel.LoadDirectory(ModelFiles.Directory(modelVersion)));
        Pipeline = new TelemetryPipeline(options, Outbox, Wakeup, Models, Telemetry, time);
    }

    public string DataDirectory { get; }
    public ManualTimeProvider Time { get; }
    public EdgePipelineOptions Options { get; }
    public EdgeTelemetry Telemetry { get; }
    public OutboxStore Outbox { get; }
    /// <summary>What the pipeline notifies after each commit (an uplink sender would wait on it).</summary>
    public UplinkWakeup Wakeup { get; } = new();
    public ModelSlot Models { get; }
    public TelemetryPipeline Pipeline { get; }

    public static async Task<PipelineHarness> StartAsync(string dataDirectory, ManualTimeProvider time,
        TimeSpan? window = null, OutboxOptions? outbox = null, string modelVersion = "v1", Action<EdgePipelineOptions>? configure = null, bool start = true)
    {
        var options = new EdgePipelineOptions
        {
            GatewayId = "gw-test",
            DataDirectory = dataDirectory,
            WindowLength = window ?? TimeSpan.FromMinutes(1),
            TickInterval = TimeSpan.FromSeconds(1),
        };
        configure?.Invoke(options);
        var harness = new PipelineHarness(dataDirectory, time, options, outbox ?? new OutboxOptions(), modelVersion);
        if (start) await harness.Pipeline.StartAsync(CancellationToken.None);
        return harness;
    }

    public static SensorReading Reading(string device, SensorKind kind, double value, long seq, DateTimeOffset ts, string? traceParent = null) =>
        new(device, kind, value, ts, seq, traceParent, null);

    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync();
        Models.Dispose();
        Outbox.Dispose();
        Wakeup.Dispose();
        Telemetry.Dispose();
    }
}
