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

    public AlertCounterState Alerts { get; set; } = new();

    /// <summary>Ids of the last applied summaries and alerts, oldest first, for idempotency.</summary>
    public List<string> AppliedItemIds { get; set; } = [];

    public CommandLog<DeviceView> Commands { get; set; } = new();
}

public sealed class PropertySetState
{
    public long Version { get; set; }

    public Dictionary<string, string> Values { get; set; } = new(StringComparer.Ordinal);

    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class AlertCounterState
{
    public long Info { get; set; }

    public long Warning { get; set; }

    public long Critical { get; set; }

    public DateTimeOffset? LastAt { get; set; }

    public string? LastCode { get; set; }
}
