namespace CloudEdge.Grains;

/// <summary>
/// The streams the platform publishes (docs/live.md), all on the durable provider <see cref="Provider"/>.
/// Only grains publish to them, after the change they describe is stored.
/// </summary>
public static class PlatformStreams
{
    /// <summary>The stream provider's name: the host registers a durable provider under it.</summary>
    public const string Provider = "platform";

    /// <summary>Per device (key: device id): its summaries, alerts and status changes.</summary>
    public const string Device = "device";

    /// <summary>Per gateway (key: gateway id): every event of its devices, and its own model changes.</summary>
    public const string Gateway = "gateway";

    /// <summary>Every alert of the fleet, on the one key <see cref="Fleet"/>.</summary>
    public const string Alerts = "alerts";

    /// <summary>Every status change of the fleet (devices and gateways), on the one key <see cref="Fleet"/>.</summary>
    public const string Status = "status";

    /// <summary>Per user (key: user id): the changes of their orders.</summary>
    public const string Orders = "orders";

    /// <summary>Per gateway (key: gateway id): a <see cref="DesiredEvent"/> at each change of its desired model (wakes long-polls).</summary>
    public const string Desired = "desired";

    /// <summary>The key of the fleet-wide streams.</summary>
    public const string Fleet = "fleet";

    /// <summary>The values of <see cref="DeviceEvent.Type"/>.</summary>
    public const string SummaryEvent = "summary";

    public const string AlertEvent = "alert";

    public const string StatusEvent = "status";

    public const string DesiredEvent = "desired";

    public static StreamId DeviceStream(string deviceId) => StreamId.Create(Device, deviceId);

    public static StreamId GatewayStream(string gatewayId) => StreamId.Create(Gateway, gatewayId);

    public static StreamId DesiredStream(string gatewayId) => StreamId.Create(Desired, gatewayId);

    public static StreamId AlertsStream { get; } = StreamId.Create(Alerts, Fleet);

    public static StreamId StatusStream { get; } = StreamId.Create(Status, Fleet);

    public static StreamId OrdersStream(string userId) => StreamId.Create(Orders, userId);

    /// <summary>A stream's id as text, <c>namespace/key</c>: how the outbox stores where an event goes.</summary>
    public static string Format(StreamId streamId) => $"{streamId.GetNamespace()}/{streamId.GetKeyAsString()}";

    /// <summary>The stream of a <see cref="Format"/> text (namespaces never contain '/').</summary>
    public static StreamId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? StreamId.Create(text[..slash], text[(slash + 1)..]) : throw new FormatException($"'{text}' is not namespace/key.");
    }

    /// <summary>The streams a device event goes to: its device and gateway, and the fleet stream of its type.</summary>
    public static List<string> StreamsOf(DeviceEvent deviceEvent)
    {
        ArgumentNullException.ThrowIfNull(deviceEvent);
        var streams = new List<string>(3);
        if (deviceEvent.DeviceId is { } deviceId)
        {
            streams.Add(Format(DeviceStream(deviceId)));
        }

        streams.Add(Format(GatewayStream(deviceEvent.GatewayId)));
        switch (deviceEvent.Type)
        {
            case AlertEvent: streams.Add(Format(AlertsStream)); break;
            case StatusEvent: streams.Add(Format(StatusStream)); break;
        }

        return streams;
    }
}

/// <summary>
/// One event of a device (or, with a null <see cref="DeviceId"/>, of a gateway): <see cref="Type"/>
/// <c>summary</c> (with <see cref="Summary"/>), <c>alert</c> (with <see cref="Alert"/>) or <c>status</c>
/// (with <see cref="Status"/>). <see cref="At"/> is when it happened: the summary's window end, the alert's
/// time, the status change's time.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceEvent")]
public sealed record DeviceEvent(string Type, string? DeviceId, string GatewayId, DateTimeOffset At, DeviceSummary? Summary, DeviceAlert? Alert, DeviceStatus? Status)
{
    /// <summary>The trace the event belongs to: the summary's or alert's own context.</summary>
    internal string? TraceParent => Summary?.TraceParent ?? Alert?.TraceParent;
}

/// <summary>A device's (or gateway's) presence and the model version it runs, after a change of either.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.DeviceStatus")]
public sealed record DeviceStatus(DeviceConnection Connection, string? ModelVersion, DateTimeOffset? LastSeen);

/// <summary>An order after a change: <see cref="Change"/> is created, paid, shipped, delivered or cancelled.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.OrderChanged")]
public sealed record OrderChanged(string Change, OrderView Order);
