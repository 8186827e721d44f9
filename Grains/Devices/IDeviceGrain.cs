using CloudEdge.Runtime;

namespace CloudEdge.Grains;

/// <summary>
/// A device twin, keyed by device id: owner user, gateway, kind and model; desired and reported
/// properties, each set with a version that increments on every change; connection status; and the
/// latest summary and alert counters fed from edge gateways.
/// </summary>
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

    /// <summary>Applies a gateway summary; false when an item with this id was already applied.</summary>
    Task<bool> ApplySummary(DeviceSummary summary);

    /// <summary>Counts a gateway alert; false when an item with this id was already applied.</summary>
    Task<bool> ApplyAlert(DeviceAlert alert);
}

public enum DeviceConnection
{
    Unknown = 0,
    Online = 1,
    Offline = 2,
}

public enum AlertSeverity
{
    Info = 0,
    Warning = 1,
    Critical = 2,
}

[Immutable]
public sealed record RegisterDevice(string RequestId, string OwnerId, string GatewayId, string Kind, string Model);

/// <summary>
/// Property values are JSON texts (<c>"1.4.0"</c>, <c>50</c>, <c>true</c>, <c>{"a":1}</c>), so any JSON
/// value round-trips; a null entry removes the property. With <see cref="ExpectedVersion"/>, a stale
/// version of that property set is a conflict.
/// </summary>
[Immutable]
public sealed record UpdateDeviceProperties(string RequestId, IReadOnlyDictionary<string, string?> Properties, long? ExpectedVersion = null);

[Immutable]
public sealed record SetDeviceConnection(string RequestId, bool Online, DateTimeOffset? At = null);

[Immutable]
public sealed record DeviceSummary(
    string ItemId,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long SampleCount,
    IReadOnlyDictionary<string, double> Metrics);

[Immutable]
public sealed record DeviceAlert(string ItemId, DateTimeOffset At, AlertSeverity Severity, string Code, string? Message);

[Immutable]
public sealed record DeviceProperties(long Version, IReadOnlyDictionary<string, string> Values, DateTimeOffset? UpdatedAt);

[Immutable]
public sealed record AlertCounters(long Total, long Info, long Warning, long Critical, DateTimeOffset? LastAt, string? LastCode);

[Immutable]
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
    AlertCounters Alerts);
