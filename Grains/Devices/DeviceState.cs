namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="DeviceGrain"/>. Every property has a default, so older records still read.</summary>
public sealed class DeviceState
{
    public bool Registered { get; set; }

    public string OwnerId { get; set; } = string.Empty;

    public string GatewayId { get; set; } = string.Empty;

    public string Kind { get; set; } = string.Empty;

    public string Model { get; set; } = string.Empty;

    public DateTimeOffset RegisteredAt { get; set; }

    public PropertySetState Desired { get; set; } = new();

    public PropertySetState Reported { get; set; } = new();

    public DeviceConnection Connection { get; set; }

    public DateTimeOffset? LastSeen { get; set; }

    public DeviceSummary? LatestSummary { get; set; }

    public DeviceAlert? LatestAlert { get; set; }

    public AlertCounterState Alerts { get; set; } = new();

    /// <summary>
    /// The highest uplink seq applied, per gateway id: an item at or below it is a duplicate. One
    /// number per gateway gives exactly-once without a log of item ids.
    /// </summary>
    public Dictionary<string, long> HighestSeq { get; set; } = new(StringComparer.Ordinal);

    public CommandLog<DeviceView> Commands { get; set; } = new();

    /// <summary>The model version of the latest applied item that named one.</summary>
    public string? ModelVersion { get; set; }

    /// <summary>True once the device is in the devices directory (devices registered before it existed join on their next uplink).</summary>
    public bool Listed { get; set; }

    /// <summary>Events stored with the change they describe and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    public List<PendingEvent<DeviceEvent>> Outbox { get; set; } = [];
}

public sealed class PropertySetState
{
    public long Version { get; set; }

    public Dictionary<string, string> Values { get; set; } = new(StringComparer.Ordinal);

    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class AlertCounterState
{
    public long Total { get; set; }

    public Dictionary<string, long> ByKind { get; set; } = new(StringComparer.Ordinal);

    public DateTimeOffset? LastAt { get; set; }

    public string? LastKind { get; set; }
}
