namespace CloudEdge.Grains;

/// <summary>
/// A device twin, keyed by device id: owner user, gateway, kind and model; desired and reported
/// properties, each set with a version that increments on every change; presence (online until a
/// silence of <see cref="DevicePresenceOptions.OfflineAfter"/>); and the latest summary, latest alert
/// and alert counters fed from edge gateways, applied exactly once by per-gateway sequence number.
/// </summary>
[Alias("cloudedge.IDeviceGrain")]
public interface IDeviceGrain : IGrainWithStringKey
{
    /// <exception cref="RuleViolationException">The owner does not exist.</exception>
    /// <exception cref="DomainConflictException">The device is already registered (by another request).</exception>
    Task<DeviceView> Register(RegisterDevice command);

    /// <exception cref="EntityNotFoundException">The device is not registered.</exception>
    [ReadOnly]
    Task<DeviceView> Get();

    /// <summary>Merges properties into the desired set: a null value removes the property.</summary>
    Task<DeviceView> UpdateDesired(UpdateDeviceProperties command);

    /// <summary>Merges properties into the reported set: a null value removes the property.</summary>
    Task<DeviceView> UpdateReported(UpdateDeviceProperties command);

    Task<DeviceView> SetConnection(SetDeviceConnection command);

    /// <summary>
    /// Applies a gateway's items for this device in list order, with one state write. An item whose
    /// seq is at or below the highest seq applied from its gateway is a duplicate; an invalid item,
    /// or any item when the device is unknown or belongs to another gateway, is rejected with a code.
    /// Never throws for a bad item: the outcomes say what happened to each, in the same order.
    /// </summary>
    Task<IReadOnlyList<UplinkOutcome>> ApplyUplink(IReadOnlyList<DeviceUplinkItem> items);

    /// <summary>Applies one gateway summary; false when it is a duplicate (seq at or below the gateway's highest).</summary>
    /// <exception cref="InvalidInputException">The summary is invalid.</exception>
    /// <exception cref="EntityNotFoundException">The device is not registered.</exception>
    Task<bool> ApplySummary(DeviceSummary summary);

    /// <summary>Counts one gateway alert; false when it is a duplicate (seq at or below the gateway's highest).</summary>
    /// <exception cref="InvalidInputException">The alert is invalid.</exception>
    /// <exception cref="EntityNotFoundException">The device is not registered.</exception>
    Task<bool> ApplyAlert(DeviceAlert alert);
}

[GenerateSerializer]
[Alias("cloudedge.DeviceConnection")]
public enum DeviceConnection
{
    Unknown = 0,
    Online = 1,
    Offline = 2,
}

/// <summary>How long a device may stay silent before it counts as offline. The host registers one instance.</summary>
public sealed class DevicePresenceOptions
{
    public const string Section = "Devices";

    public TimeSpan OfflineAfter { get; set; } = TimeSpan.FromMinutes(5);
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.RegisterDevice")]
public sealed record RegisterDevice(string RequestId, string OwnerId, string GatewayId, string Kind, string Model);

/// <summary>
/// Property values are JSON texts (<c>"1.4.0"</c>, <c>50</c>, <c>true</c>, <c>{"a":1}</c>), so any JSON
/// value round-trips; a null entry removes the property. With <see cref="ExpectedVersion"/>, a stale
/// version of that property set is a conflict.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.UpdateDeviceProperties")]
public sealed record UpdateDeviceProperties(string RequestId, IReadOnlyDictionary<string, string?> Properties, long? ExpectedVersion = null);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.SetDeviceConnection")]
public sealed record SetDeviceConnection(string RequestId, bool Online, DateTimeOffset? At = null);

/// <summary>
/// A window summary computed at the edge for one sensor kind. <see cref="Seq"/> is the gateway's
/// sequence number for this device; <see cref="TraceParent"/> the W3C context the edge created it in
/// (the silo fills in the uplink request's context when the item has none); <see cref="Links"/> the
/// contexts of the readings it summarizes.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceSummary")]
public sealed record DeviceSummary(
    string ItemId,
    string GatewayId,
    long Seq,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    string Kind,
    long Count,
    double Min,
    double Max,
    double Mean,
    double StdDev,
    double MaxScore,
    long AnomalyCount,
    string? ModelVersion,
    string? TraceParent = null,
    IReadOnlyList<string>? Links = null)
{
    /// <summary>The trace id of <see cref="TraceParent"/>.</summary>
    public string? TraceId => TraceContext.TraceIdOf(TraceParent);
}

/// <summary>An anomaly the edge model found in one reading (<see cref="ReadingSeq"/>): its score crossed the threshold.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceAlert")]
public sealed record DeviceAlert(
    string ItemId,
    string GatewayId,
    long Seq,
    DateTimeOffset At,
    string Kind,
    double Value,
    double Score,
    double Threshold,
    string? ModelVersion,
    long? ReadingSeq,
    string? TraceParent = null)
{
    /// <summary>The trace id of <see cref="TraceParent"/>.</summary>
    public string? TraceId => TraceContext.TraceIdOf(TraceParent);
}

/// <summary>One uplink item for a device: exactly one of a summary or an alert.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceUplinkItem")]
public sealed record DeviceUplinkItem(DeviceSummary? Summary, DeviceAlert? Alert)
{
    public string ItemId => Summary?.ItemId ?? Alert?.ItemId ?? string.Empty;
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceProperties")]
public sealed record DeviceProperties(long Version, IReadOnlyDictionary<string, string> Values, DateTimeOffset? UpdatedAt);

/// <summary>Alerts applied so far: the total, per kind, and the latest one's time and kind.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.AlertCounters")]
public sealed record AlertCounters(long Total, IReadOnlyDictionary<string, long> ByKind, DateTimeOffset? LastAt, string? LastKind);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceView")]
public sealed record DeviceView(
    string DeviceId,
    string OwnerId,
    string GatewayId,
    string Kind,
    string Model,
    DateTimeOffset RegisteredAt,
    DeviceProperties Desired,
    DeviceProperties Reported,
    DeviceConnection Connection,
    DateTimeOffset? LastSeen,
    DeviceSummary? LatestSummary,
    DeviceAlert? LatestAlert,
    AlertCounters Alerts,
    IReadOnlyDictionary<string, long> HighestSeq);
