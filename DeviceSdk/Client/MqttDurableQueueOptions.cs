namespace CloudEdge.DeviceSdk;

/// <summary>
/// Opt-in durable offline queue: every publish is written to a SQLite file under <see cref="Directory"/> before
/// PublishAsync queues it, and removed when the server has acknowledged it (or refused it for good). A client
/// created on the same directory and client id after a crash or restart sends what was left, in the original order.
/// At the bound, <see cref="MqttClientOptions.OfflineQueueOverflow"/> decides: DropOldest removes the oldest waiting
/// publish (counted in <c>cloudedge.devicesdk.offline_queue.dropped</c>), RejectNew refuses the new one; either way the
/// losing publish's task fails with <see cref="MqttMessageDroppedException"/>.
/// </summary>
public sealed class MqttDurableQueueOptions
{
    /// <summary>Directory for the queue files, one per client id (created if missing).</summary>
    public required string Directory { get; init; }
    /// <summary>Publishes waiting to be sent, at most.</summary>
    public int MaximumMessages { get; init; } = 100_000;
    /// <summary>Bytes (topic + payload) of the publishes waiting to be sent, at most.</summary>
    public long MaximumBytes { get; init; } = 64L * 1024 * 1024;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory)) throw new ArgumentException("DurableQueue.Directory is required.", nameof(Directory));
        if (MaximumMessages < 1) throw new ArgumentException("DurableQueue.MaximumMessages must be at least 1.", nameof(MaximumMessages));
        if (MaximumBytes < 1) throw new ArgumentException("DurableQueue.MaximumBytes must be at least 1.", nameof(MaximumBytes));
    }
}
