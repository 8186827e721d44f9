using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>The SDK's ActivitySource and Meter; the OpenTelemetry SDK in a host subscribes to them by name.</summary>
public static class DeviceSdkTelemetry
{
    public const string Name = "CloudEdge.Bench.DeviceSdk.Baseline";

    internal static readonly ActivitySource Source = new(Name, "1.0");
    internal static readonly Meter Meter = new(Name, "1.0");

    internal static readonly Counter<long> Published = Meter.CreateCounter<long>("cloudedge.devicesdk.messages.published", "{message}", "Publishes handed to the client.");
    internal static readonly Counter<long> Completed = Meter.CreateCounter<long>("cloudedge.devicesdk.messages.completed", "{message}", "Publishes finished successfully (written for QoS 0, acknowledged for QoS 1/2).");
    internal static readonly Counter<long> Failed = Meter.CreateCounter<long>("cloudedge.devicesdk.messages.failed", "{message}", "Publishes that failed (refused, dropped, connection lost, client stopped).");
    internal static readonly Counter<long> Resent = Meter.CreateCounter<long>("cloudedge.devicesdk.messages.resent", "{message}", "In-flight QoS 1/2 packets sent again after a reconnect.");
    internal static readonly Counter<long> Received = Meter.CreateCounter<long>("cloudedge.devicesdk.messages.received", "{message}", "Messages received from the server.");
    internal static readonly Counter<long> HandlerErrors = Meter.CreateCounter<long>("cloudedge.devicesdk.handler.errors", "{error}", "Exceptions thrown by the message handler or event handlers.");
    internal static readonly Counter<long> OfflineDropped = Meter.CreateCounter<long>("cloudedge.devicesdk.offline_queue.dropped", "{message}", "Publishes dropped by the offline queue overflow policy.");
    internal static readonly UpDownCounter<long> OfflineDepth = Meter.CreateUpDownCounter<long>("cloudedge.devicesdk.offline_queue.depth", "{message}", "Publishes waiting to be sent.");
    internal static readonly Counter<long> Disconnects = Meter.CreateCounter<long>("cloudedge.devicesdk.disconnects", "{disconnect}", "Connection losses, by reason.");
    internal static readonly Counter<long> ReconnectAttempts = Meter.CreateCounter<long>("cloudedge.devicesdk.reconnect.attempts", "{attempt}", "Reconnect attempts, by outcome.");
    internal static readonly Histogram<double> PublishDuration = Meter.CreateHistogram<double>("cloudedge.devicesdk.publish.duration", "ms", "From PublishAsync to completion.");
}
