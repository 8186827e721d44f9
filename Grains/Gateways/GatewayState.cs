namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="GatewayGrain"/>. Every property has a default, so older records still read.</summary>
public sealed class GatewayState
{
    public List<string> DeviceIds { get; set; } = [];

    public DateTimeOffset? LastUplinkAt { get; set; }

    public long Uplinks { get; set; }

    public long Applied { get; set; }

    public long Duplicates { get; set; }

    public long Rejected { get; set; }

    public long DropReports { get; set; }

    public long DroppedSummaries { get; set; }

    public long DroppedAlerts { get; set; }

    public long DroppedReadings { get; set; }

    public string? LastDropReason { get; set; }

    public DateTimeOffset? LastDropAt { get; set; }

    /// <summary>The highest seq of an applied drop report: one at or below it is a duplicate.</summary>
    public long HighestDropsSeq { get; set; }

    public long DesiredVersion { get; set; }

    public ModelRef? DesiredModel { get; set; }

    public DateTimeOffset? DesiredUpdatedAt { get; set; }

    public long ReportedVersion { get; set; }

    public ReportedModel? ReportedModel { get; set; }

    public DateTimeOffset? ReportedUpdatedAt { get; set; }

    /// <summary>True once the gateway is in the gateways directory (gateways known before it existed join on their next write).</summary>
    public bool Listed { get; set; }

    /// <summary>Status events stored with the change and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    public List<PendingEvent<DeviceEvent>> Outbox { get; set; } = [];
}
