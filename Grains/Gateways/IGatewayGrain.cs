namespace CloudEdge.Grains;

/// <summary>
/// An edge gateway, keyed by gateway id: the devices registered behind it, the health of its uplink
/// (last uplink, items applied, duplicates and rejected, drops it reported) and its model twin: the
/// desired model an admin assigned (a set with a version that increments on every change) and the
/// model the gateway reports running.
/// </summary>
[Alias("cloudedge.IGatewayGrain")]
public interface IGatewayGrain : IGrainWithStringKey
{
    /// <exception cref="EntityNotFoundException">Nothing is known about the gateway yet.</exception>
    [ReadOnly]
    Task<GatewayView> Get();

    /// <summary>Adds a device to the gateway's devices (called by the device grain; adding twice is a no-op).</summary>
    Task AttachDevice(string deviceId);

    /// <summary>
    /// Records one uplink request: the outcomes of its device items, and applies its drop reports
    /// (exactly once by their seq, like device items). Returns the outcomes of the drop reports.
    /// </summary>
    Task<IReadOnlyList<UplinkOutcome>> RecordUplink(GatewayUplink uplink);

    [ReadOnly]
    Task<GatewayDesired> GetDesired();

    /// <summary>Sets (or with a null model, clears) the desired model; the version increments only when the model changes.</summary>
    /// <exception cref="DomainConflictException">The expected version is stale.</exception>
    Task<GatewayDesired> SetDesired(SetGatewayDesired command);

    /// <summary>Stores what the gateway reports about its model.</summary>
    Task<GatewayReported> SetReported(ReportGatewayModel command);
}

/// <summary>A gateway's report of items it had to drop from its outbox (by policy, before they were sent).</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayDrops")]
public sealed record GatewayDrops(string ItemId, long Seq, long Summaries, long Alerts, long Readings, string? Reason);

/// <summary>
/// One uplink request as the gateway records it: counts of its device items by outcome, the devices
/// that took items (registered behind this gateway), and its drop reports to apply.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayUplink")]
public sealed record GatewayUplink(DateTimeOffset ReceivedAt, long Applied, long Duplicates, long Rejected, IReadOnlyList<string> DeviceIds, IReadOnlyList<GatewayDrops> Drops);

/// <summary>A model as a gateway needs it: its name and version, and the content address of its bytes.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.ModelRef")]
public sealed record ModelRef(string Name, string Version, string Sha256, long Size);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.SetGatewayDesired")]
public sealed record SetGatewayDesired(ModelRef? Model, long? ExpectedVersion = null);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayDesired")]
public sealed record GatewayDesired(long Version, ModelRef? Model, DateTimeOffset? UpdatedAt);

[GenerateSerializer]
[Alias("cloudedge.ModelStatus")]
public enum ModelStatus
{
    Downloading = 0,
    Loading = 1,
    Running = 2,
    Failed = 3,
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.ReportGatewayModel")]
public sealed record ReportGatewayModel(string Name, string Version, ModelStatus Status, string? Error);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.ReportedModel")]
public sealed record ReportedModel(string Name, string Version, ModelStatus Status, string? Error);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayReported")]
public sealed record GatewayReported(long Version, ReportedModel? Model, DateTimeOffset? UpdatedAt);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DropCounters")]
public sealed record DropCounters(long Reports, long Summaries, long Alerts, long Readings, string? LastReason, DateTimeOffset? LastAt);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayHealth")]
public sealed record GatewayHealth(
    DateTimeOffset? LastUplinkAt,
    long Uplinks,
    long Applied,
    long Duplicates,
    long Rejected,
    DropCounters Drops);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.GatewayView")]
public sealed record GatewayView(
    string GatewayId,
    IReadOnlyList<string> DeviceIds,
    GatewayHealth Health,
    GatewayDesired Desired,
    GatewayReported Reported);
