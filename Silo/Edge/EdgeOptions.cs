namespace CloudEdge.Silo.Edge;

/// <summary>Limits of the gateway routes, bound from the "Edge" configuration section.</summary>
public sealed class EdgeOptions
{
    public const string Section = "Edge";

    /// <summary>Items per uplink request.</summary>
    public int MaxUplinkItems { get; set; } = 1000;

    /// <summary>Bytes of an uplink body after decompression (and before, on the wire).</summary>
    public long MaxUplinkBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>The longest long-poll a gateway may ask for with ?waitSeconds= on GET desired.</summary>
    public int MaxWaitSeconds { get; set; } = 60;

    /// <summary>Bytes of an uploaded model.</summary>
    public long MaxModelBytes { get; set; } = 256L * 1024 * 1024;
}
