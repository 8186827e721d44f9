namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="GatewayGrain"/>. Every property has a default, so older records still read.</summary>
[GenerateSerializer]
[Alias("cloudedge.GatewayState")]
public sealed class GatewayState
{
    [Id(0)]
    public List<string> DeviceIds { get; set; } = [];

    [Id(1)]
    public DateTimeOffset? LastUplinkAt { get; set; }

    [Id(2)]
    public long Uplinks { get; set; }

    [Id(3)]
    public long Applied { get; set; }

    [Id(4)]
    public long Duplicates { get; set; }

    [Id(5)]
    public long Rejected { get; set; }

    [Id(6)]
    public long DropReports { get; set; }

    [Id(7)]
    public long DroppedSummaries { get; set; }

    [Id(8)]
    public long DroppedAlerts { get; set; }

    [Id(9)]
    public long DroppedReadings { get; set; }

    [Id(10)]
    public string? LastDropReason { get; set; }

    [Id(11)]
    public DateTimeOffset? LastDropAt { get; set; }

    /// <summary>The highest seq of an applied drop report: one at or below it is a duplicate.</summary>
    [Id(12)]
    public long HighestDropsSeq { get; set; }

    [Id(13)]
    public long DesiredVersion { get; set; }

    [Id(14)]
    public ModelRef? DesiredModel { get; set; }

    [Id(15)]
    public DateTimeOffset? DesiredUpdatedAt { get; set; }

    [Id(16)]
    public long ReportedVersion { get; set; }

    [Id(17)]
    public ReportedModel? ReportedModel { get; set; }

    [Id(18)]
    public DateTimeOffset? ReportedUpdatedAt { get; set; }

    /// <summary>True once the gateway is in the gateways directory (gateways known before it existed join on their next write).</summary>
    [Id(19)]
    public bool Listed { get; set; }

    /// <summary>Status events stored with the change and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    [Id(20)]
    public List<PendingEvent<DeviceEvent>> Outbox { get; set; } = [];
}
