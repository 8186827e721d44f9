namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="DeviceGrain"/>. Every property has a default, so older records still read.</summary>
[GenerateSerializer]
[Alias("cloudedge.DeviceState")]
public sealed class DeviceState
{
    [Id(0)]
    public bool Registered { get; set; }

    [Id(1)]
    public string OwnerId { get; set; } = string.Empty;

    [Id(2)]
    public string GatewayId { get; set; } = string.Empty;

    [Id(3)]
    public string Kind { get; set; } = string.Empty;

    [Id(4)]
    public string Model { get; set; } = string.Empty;

    [Id(5)]
    public DateTimeOffset RegisteredAt { get; set; }

    [Id(6)]
    public PropertySetState Desired { get; set; } = new();

    [Id(7)]
    public PropertySetState Reported { get; set; } = new();

    [Id(8)]
    public DeviceConnection Connection { get; set; }

    [Id(9)]
    public DateTimeOffset? LastSeen { get; set; }

    [Id(10)]
    public DeviceSummary? LatestSummary { get; set; }

    [Id(11)]
    public DeviceAlert? LatestAlert { get; set; }

    [Id(12)]
    public AlertCounterState Alerts { get; set; } = new();

    /// <summary>
    /// The highest uplink seq applied, per gateway id: an item at or below it is a duplicate. One
    /// number per gateway gives exactly-once without a log of item ids.
    /// </summary>
    [Id(13)]
    public Dictionary<string, long> HighestSeq { get; set; } = new(StringComparer.Ordinal);

    [Id(14)]
    public CommandLog<DeviceView> Commands { get; set; } = new();

    /// <summary>The model version of the latest applied item that named one.</summary>
    [Id(15)]
    public string? ModelVersion { get; set; }

    /// <summary>True once the device is in the devices directory (devices registered before it existed join on their next uplink).</summary>
    [Id(16)]
    public bool Listed { get; set; }

    /// <summary>Events stored with the change they describe and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    [Id(17)]
    public List<PendingEvent<DeviceEvent>> Outbox { get; set; } = [];
}

[GenerateSerializer]
[Alias("cloudedge.PropertySetState")]
public sealed class PropertySetState
{
    [Id(0)]
    public long Version { get; set; }

    [Id(1)]
    public Dictionary<string, string> Values { get; set; } = new(StringComparer.Ordinal);

    [Id(2)]
    public DateTimeOffset? UpdatedAt { get; set; }
}

[GenerateSerializer]
[Alias("cloudedge.AlertCounterState")]
public sealed class AlertCounterState
{
    [Id(0)]
    public long Total { get; set; }

    [Id(1)]
    public Dictionary<string, long> ByKind { get; set; } = new(StringComparer.Ordinal);

    [Id(2)]
    public DateTimeOffset? LastAt { get; set; }

    [Id(3)]
    public string? LastKind { get; set; }
}
