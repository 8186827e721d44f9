namespace CloudEdge.EdgePipeline;

/// <summary>The pipeline's settings (configuration section <c>EdgeAgent</c>; docs/edge-agent.md).</summary>
public sealed class EdgePipelineOptions
{
    /// <summary>This gateway's id: the <c>sub</c> of its token and the first part of every outbox item id.</summary>
    public string GatewayId { get; set; } = "";

    /// <summary>Where the journal and outbox (edge.db) and OTA models live.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Length of the per-device tumbling windows, aligned to the Unix epoch in gateway time.</summary>
    public TimeSpan WindowLength { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Readings waiting between the broker and the pipeline loop.</summary>
    public int IngestCapacity { get; set; } = 10_000;

    /// <summary>How long a QoS 1/2 publisher is held (its PUBACK delayed) when the ingest queue is full before it is refused with 0x97.</summary>
    public TimeSpan IngestFullWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Readings per journal commit (group commit: one fsync acknowledges them all).</summary>
    public int MaxBatch { get; set; } = 512;

    /// <summary>Span links a summary keeps to its readings (anomalous readings first); at most the Silo's limit (<see cref="Uplink.SiloLimits.MaxLinks"/>).</summary>
    public int MaxSummaryLinks { get; set; } = Uplink.SiloLimits.MaxLinks;

    /// <summary>How often due windows are closed when no readings arrive.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Readings per device remembered to recognise a QoS 1 redelivery (same seq and ts).</summary>
    public int DuplicateMemory { get; set; } = 1024;
}
