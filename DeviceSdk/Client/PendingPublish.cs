using System.Diagnostics;

namespace CloudEdge.DeviceSdk;

/// <summary>A publish from the moment PublishAsync accepts it (or the durable queue reloads it) until it completes.</summary>
internal sealed class PendingPublish(MqttMessage message, Activity? activity, string? traceParent, string? traceState, long startedAt)
{
    public MqttMessage Message { get; } = message;
    public Activity? Activity { get; } = activity;
    public string? TraceParent { get; } = traceParent;
    public string? TraceState { get; } = traceState;
    public long StartedAt { get; } = startedAt;
    public TaskCompletionSource<MqttPublishResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Its node while it waits in the offline queue.</summary>
    public LinkedListNode<PendingPublish>? QueueNode { get; set; }
    /// <summary>Its node while MQTTnet holds it (sent, not yet acknowledged).</summary>
    public LinkedListNode<PendingPublish>? FlightNode { get; set; }
    /// <summary>Its row in the durable queue; null when the queue is in memory only.</summary>
    public long? StoreId { get; set; }
    /// <summary>What it counts against the queue's byte bound: topic and payload.</summary>
    public long Size => Message.Topic.Length + Message.Payload.Length;
}
