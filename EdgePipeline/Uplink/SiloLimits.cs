namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>What the Silo's uplink endpoint accepts (docs/uplink.md); the Silo's own constant is DeviceRules.MaxLinks.</summary>
internal static class SiloLimits
{
    /// <summary>Span links per item: the Silo refuses a summary or a batch with more.</summary>
    public const int MaxLinks = 32;
}
