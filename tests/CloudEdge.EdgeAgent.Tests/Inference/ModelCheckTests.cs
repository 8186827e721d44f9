using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CloudEdge.EdgePipeline.Inference;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary><c>CloudEdge.EdgeAgent check-model &lt;dir&gt;</c>: the check OTA runs, plus the folder's samples.</summary>
[Collection(OrtCollection.Name)]
public sealed class ModelCheckTests
{
    public static TheoryData<string> Versions() => new(ModelFiles.Versions());

    [Theory]
    [MemberData(nameof(Versions))]
    public void Every_committed_model_passes_with_all_its_samples(string version)
    {
        var (code, stdout, stderr) = CheckModel(ModelFiles.Directory(version));
        Assert.True(code == CheckModelCommand.Ok, stderr);
        Assert.Contains("384/384 samples", stdout); // four series of 96 readings
        Assert.Contains(ModelFiles.ManifestJson(version).GetProperty("sha256").GetString()!, stdout);
        Assert.Empty(stderr);
    }

    [Fact]
    public void A_manifest_that_does_not_parse_or_lacks_a_threshold_is_a_bad_manifest()
    {
        using var dir = CopyOf("v1");
        File.WriteAllText(Path.Combine(dir.Path, "manifest.json"), "{ \"name\": ");
        AssertRejected(dir.Path, ModelCheckFailure.BadManifest, "manifest.json");

        using var noThreshold = CopyOf("v1");
        EditManifest(noThreshold.Path, m => m.Remove("threshold"));
        AssertRejected(noThreshold.Path, ModelCheckFailure.BadManifest, "threshold");
    }

    [Fact]
    public void Model_bytes_that_differ_from_the_manifests_sha256_are_refused()
    {
        using var dir = CopyOf("v1");
        var path = Path.Combine(dir.Path, "anomaly.onnx");
        var bytes = File.ReadAllBytes(path);
        bytes[^5] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        AssertRejected(dir.Path, ModelCheckFailure.Sha256Mismatch, "sha256");
    }

    [Fact]
    public void A_model_with_another_input_shape_is_refused_with_both_shapes_named()
    {
        // ONNX's Relu node test: x float[3, 4, 5] -> y, declared correctly in the manifest except for its shape.
        using var dir = CopyOf("v1");
        var relu = File.ReadAllBytes(Path.Combine(ConformanceTests.DataRoot, "test_relu", "model.onnx"));
        File.WriteAllBytes(Path.Combine(dir.Path, "anomaly.onnx"), relu);
        EditManifest(dir.Path, m =>
        {
            m["sha256"] = Convert.ToHexStringLower(SHA256.HashData(relu));
            m["input"]!["name"] = "x";
            m["output"]!["name"] = "y";
        });
        var stderr = AssertRejected(dir.Path, ModelCheckFailure.Contract, "x: Float[3, 4, 5]");
        Assert.Contains("float32 [N, 8] is required", stderr);
    }

    [Fact]
    public void Input_names_that_differ_from_the_manifest_are_refused()
    {
        using var dir = CopyOf("v2");
        EditManifest(dir.Path, m => m["input"]!["name"] = "readings");
        AssertRejected(dir.Path, ModelCheckFailure.Contract, "'readings'");
    }

    [Fact]
    public void Bytes_that_are_not_a_model_are_refused_with_the_runtimes_reason()
    {
        using var dir = CopyOf("v1");
        var garbage = "this is not an ONNX model"u8.ToArray();
        File.WriteAllBytes(Path.Combine(dir.Path, "anomaly.onnx"), garbage);
        EditManifest(dir.Path, m => m["sha256"] = Convert.ToHexStringLower(SHA256.HashData(garbage)));
        AssertRejected(dir.Path, ModelCheckFailure.Unloadable, "protobuf parsing failed");
    }

    [Fact]
    public void A_sample_scored_differently_is_a_mismatch_that_names_it()
    {
        using var dir = CopyOf("v1");
        var samples = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "samples.json")))!;
        var scores = samples["series"]![2]!["scores"]!.AsArray();
        scores[40] = scores[40]!.GetValue<double>() + 0.01;
        File.WriteAllText(Path.Combine(dir.Path, "samples.json"), samples.ToJsonString());
        var stderr = AssertRejected(dir.Path, ModelCheckFailure.SampleMismatch, "383/384 samples match");
        Assert.Contains("pressure[40]", stderr);
    }

    [Fact]
    public void Missing_files_and_bad_usage_are_reported()
    {
        using var dir = CopyOf("v1");
        File.Delete(Path.Combine(dir.Path, "samples.json"));
        AssertRejected(dir.Path, ModelCheckFailure.MissingFile, "samples.json");
        AssertRejected(Path.Combine(dir.Path, "nowhere"), ModelCheckFailure.MissingFile, "manifest.json");

        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(CheckModelCommand.Usage, CheckModelCommand.Run([], output, error));
        Assert.Contains("usage: CloudEdge.EdgeAgent check-model <model-dir>", error.ToString());
    }

    [Fact]
    public async Task The_agent_executable_checks_a_model_and_exits_with_the_result()
    {
        // The real command line: the agent's own entry point, as an operator runs it.
        var agent = Path.Combine(AppContext.BaseDirectory, "CloudEdge.EdgeAgent.dll");
        var ok = await ExternalProcess.RunAsync("dotnet", [agent, "check-model", ModelFiles.Directory("v2")], TimeSpan.FromMinutes(2));
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Contains("384/384 samples", ok.StdoutText);

        using var dir = CopyOf("v1");
        File.WriteAllText(Path.Combine(dir.Path, "manifest.json"), "[]");
        var bad = await ExternalProcess.RunAsync("dotnet", [agent, "check-model", dir.Path], TimeSpan.FromMinutes(2));
        Assert.Equal(CheckModelCommand.Rejected, bad.ExitCode);
        Assert.Contains("check-model: bad-manifest:", bad.Stderr);
    }

    private static string AssertRejected(string directory, ModelCheckFailure reason, string detail)
    {
        var (code, stdout, stderr) = CheckModel(directory);
        Assert.Equal(CheckModelCommand.Rejected, code);
        Assert.DoesNotContain("samples", stdout);
        Assert.StartsWith($"check-model: {ModelRejectedException.ReasonCodeOf(reason)}: ", stderr);
        Assert.Contains(detail, stderr);
        return stderr;
    }

    private static (int Code, string Stdout, string Stderr) CheckModel(string directory)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = CheckModelCommand.Run([directory], output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static TempDirectory CopyOf(string version)
    {
        var dir = new TempDirectory();
        foreach (var file in Directory.GetFiles(ModelFiles.Directory(version))) File.Copy(file, Path.Combine(dir.Path, Path.GetFileName(file)));
        return dir;
    }

    private static void EditManifest(string directory, Action<JsonObject> edit)
    {
        var path = Path.Combine(directory, "manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
    }
}
