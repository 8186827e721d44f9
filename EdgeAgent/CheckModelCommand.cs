using CloudEdge.EdgePipeline.Inference;

namespace CloudEdge.EdgeAgent;

/// <summary>
/// <c>CloudEdge.EdgeAgent check-model &lt;model-dir&gt;</c>: the check OTA runs before a swap (manifest, sha256,
/// input/output contract, smoke inference) plus the folder's samples.json scored against its expected scores.
/// </summary>
internal static class CheckModelCommand
{
    public const int Ok = 0;
    public const int Usage = 2;
    public const int Rejected = 1;

    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        if (args.Count != 1 || args[0].StartsWith('-'))
        {
            error.WriteLine("usage: CloudEdge.EdgeAgent check-model <model-dir>   (manifest.json, the .onnx file and samples.json)");
            return Usage;
        }
        try
        {
            var report = ModelCheck.CheckDirectory(args[0]);
            output.WriteLine($"{report.Directory}: sha256 {report.Sha256}, contract float32 [N, {FeatureSpec.FeatureCount}] -> [N, 1]");
            output.WriteLine($"{report.Samples}/{report.Samples} samples");
            return Ok;
        }
        catch (ModelRejectedException e)
        {
            error.WriteLine($"check-model: {e.ReasonCode}: {e.Message}");
            return Rejected;
        }
    }
}
