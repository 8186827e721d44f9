using System.Security.Cryptography;
using System.Text.Json;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Ota;
using CloudEdge.EdgePipeline.Uplink;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>Over-the-air model updates against a loopback endpoint serving docs/uplink.md's OTA routes.</summary>
[Collection(OrtCollection.Name)]
public sealed class OtaTests
{
    private static byte[] ModelBytes(string version) => File.ReadAllBytes(Path.Combine(ModelFiles.Directory(version), "anomaly.onnx"));

    private static string ManifestJson(string version) => File.ReadAllText(Path.Combine(ModelFiles.Directory(version), "manifest.json"));

    private static SiloState Assign(string version, byte[] bytes, string manifestJson)
    {
        var state = new SiloState { DesiredJson = JsonSerializer.Serialize(new { model = new { name = "anomaly", version } }), DesiredVersion = 1 };
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        state.Blobs[sha] = bytes;
        state.Manifests[$"anomaly/{version}"] = manifestJson;
        return state;
    }

    private ModelUpdater Updater(PipelineHarness harness, SiloHttp http) =>
        new(http, harness.Models, new OtaOptions(), harness.DataDirectory, harness.Telemetry, TimeProvider.System);

    [Fact]
    public async Task A_new_version_is_verified_smoke_tested_and_swapped_in_without_losing_a_reading()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var state = Assign("v2", ModelBytes("v2"), ManifestJson("v2"));
        await using var silo = await FakeSilo.StartAsync(state);
        using var http = new SiloHttp(new UplinkOptions { SiloUrl = silo.Url, Token = state.Token }, "gw-test");
        using var updater = Updater(harness, http);

        // Readings keep flowing while the model is swapped.
        var feeding = Task.Run(async () =>
        {
            for (var i = 1; i <= 300; i++)
            {
                var result = await harness.Pipeline.AcceptAsync(new SensorReading("dev-ota", SensorKind.Humidity, 45 + Math.Sin(i), time.GetUtcNow(), i, null, null), true, CancellationToken.None);
                Assert.Equal(AcceptResult.Accepted, result);
            }
        });
        await Wait.UntilAsync(() => harness.Pipeline.OpenWindows > 0, "readings flowing");
        Assert.Equal(OtaOutcome.Updated, await updater.PollOnceAsync(CancellationToken.None));
        await feeding;
        Assert.Equal("v2", harness.Models.Current.Version);
        Assert.Equal(0.6, harness.Models.Current.Threshold);

        var reported = JsonDocument.Parse(Assert.Single(state.Reported)).RootElement.GetProperty("model");
        Assert.Equal("running", reported.GetProperty("status").GetString());
        Assert.Equal("v2", reported.GetProperty("version").GetString());
        // Unchanged desired properties: the ETag makes the next poll a 304, nothing is downloaded or reported again.
        Assert.Equal(OtaOutcome.Unchanged, await updater.PollOnceAsync(CancellationToken.None));
        Assert.Single(state.Reported);

        // Every reading is in the window, and the summary is labelled with the new model.
        time.Advance(TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 1, "summary");
        var summary = JsonDocument.Parse(harness.Outbox.ReadBatch(10, long.MaxValue).Single(i => i.Type == "summary").Body).RootElement;
        Assert.Equal(300, summary.GetProperty("count").GetInt64());
        Assert.Equal("v2", summary.GetProperty("modelVersion").GetString());

        // A restart keeps the OTA model.
        using var reloaded = ActiveModel.Load(dir.Path, ModelFiles.Directory("v1"));
        Assert.Equal("v2", reloaded.Version);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(ModelBytes("v2"))), reloaded.Sha256);
    }

    [Fact]
    public async Task Corrupt_model_bytes_are_refused_the_old_model_keeps_running_and_the_failure_is_reported()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        // The Silo serves garbage under the sha256 its manifest declares: the checksum passes, ONNX Runtime refuses it.
        var garbage = ModelBytes("v2")[..200];
        var manifest = ManifestJson("v2").Replace(ModelFiles.Manifest("v2").Sha256!, Convert.ToHexStringLower(SHA256.HashData(garbage)));
        var state = Assign("v2", garbage, manifest);
        await using var silo = await FakeSilo.StartAsync(state);
        using var http = new SiloHttp(new UplinkOptions { SiloUrl = silo.Url, Token = state.Token }, "gw-test");
        using var updater = Updater(harness, http);

        Assert.Equal(OtaOutcome.RolledBack, await updater.PollOnceAsync(CancellationToken.None));
        Assert.Equal("v1", harness.Models.Current.Version);
        var reported = JsonDocument.Parse(Assert.Single(state.Reported)).RootElement.GetProperty("model");
        Assert.Equal("failed", reported.GetProperty("status").GetString());
        Assert.Equal("v2", reported.GetProperty("version").GetString());
        Assert.Equal("v1", reported.GetProperty("runningVersion").GetString());
        Assert.False(string.IsNullOrEmpty(reported.GetProperty("error").GetString()));
        Assert.False(File.Exists(Path.Combine(dir.Path, "models", "active.json")));

        // The old model still scores readings.
        Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(new SensorReading("d", SensorKind.Pressure, 1013, time.GetUtcNow(), 1, null, null), true, CancellationToken.None));
        time.Advance(TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 1, "summary");
        Assert.Contains("\"modelVersion\":\"v1\"", harness.Outbox.ReadBatch(10, long.MaxValue).Single().Body);
    }

    [Fact]
    public async Task Bytes_that_do_not_match_the_manifest_checksum_are_refused()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var bytes = ModelBytes("v2");
        var state = Assign("v2", bytes, ManifestJson("v2"));
        var tampered = (byte[])bytes.Clone();
        tampered[^3] ^= 0x55;
        state.Blobs[ModelFiles.Manifest("v2").Sha256!] = tampered; // served under the original sha256
        await using var silo = await FakeSilo.StartAsync(state);
        using var http = new SiloHttp(new UplinkOptions { SiloUrl = silo.Url, Token = state.Token }, "gw-test");
        using var updater = Updater(harness, http);

        Assert.Equal(OtaOutcome.RolledBack, await updater.PollOnceAsync(CancellationToken.None));
        Assert.Equal("v1", harness.Models.Current.Version);
        var reported = JsonDocument.Parse(Assert.Single(state.Reported)).RootElement.GetProperty("model");
        Assert.Contains("sha256", reported.GetProperty("error").GetString());
    }

    [Fact]
    public async Task No_model_assigned_keeps_the_running_model()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var state = new SiloState { DesiredJson = "{\"version\":3,\"model\":null}", DesiredVersion = 3 };
        await using var silo = await FakeSilo.StartAsync(state);
        using var http = new SiloHttp(new UplinkOptions { SiloUrl = silo.Url, Token = state.Token }, "gw-test");
        using var updater = Updater(harness, http);
        Assert.Equal(OtaOutcome.Unchanged, await updater.PollOnceAsync(CancellationToken.None));
        Assert.Equal("v1", harness.Models.Current.Version);
        Assert.Empty(state.Reported);
    }
}
