using System.Diagnostics;
using CloudEdge.Mqtt;

namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>A publish from the moment PublishAsync accepts it until its task completes.</summary>
internal sealed class PendingPublish(MqttMessage message, Activity? activity, string? traceParent, string? traceState, long startedAt)
{
    public MqttMessage Message { get; } = message;
    public Activity? Activity { get; } = activity;
    public string? TraceParent { get; } = traceParent;
    public string? TraceState { get; } = traceState;
    public long StartedAt { get; } = startedAt;
    public TaskCompletionSource<MqttPublishResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Built once on first use; shared by every (re)send.</summary>
    public MqttProperties? Properties { get; set; }
    public bool PropertiesBuilt { get; set; }
    /// <summary>Its node while it waits in the offline queue.</summary>
    public LinkedListNode<PendingPublish>? QueueNode { get; set; }
    public int? EncodedSize { get; set; }
}

internal enum FlightStage
{
    AwaitingPubAck,
    AwaitingPubRec,
    AwaitingPubComp,
}

/// <summary>A QoS 1/2 publish that holds a packet identifier: session state that survives reconnects.</summary>
internal sealed class Flight(PendingPublish publish, ushort packetId, FlightStage stage)
{
    public PendingPublish Publish { get; } = publish;
    public ushort PacketId { get; } = packetId;
    public FlightStage Stage { get; set; } = stage;
    public LinkedListNode<Flight>? Node { get; set; }
}
