namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// Durable storage for the broker's persistent sessions and retained messages. The broker hands it opaque
/// records (its own encoding) keyed by client id or topic; one <see cref="WriteAsync"/> call is one atomic batch.
/// Register one in the broker's services (e.g. <see cref="MqttBrokerStoreServiceCollectionExtensions.AddMqttBrokerSqliteStore"/>)
/// and sessions survive a restart; without one the broker keeps everything in memory.
/// </summary>
public interface IMqttBrokerStore
{
    /// <summary>Everything stored, read once when the broker starts (before any client connects).</summary>
    Task<MqttStoredState> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Applies a batch atomically: after a crash either all of it or none of it is there.</summary>
    Task WriteAsync(IReadOnlyList<MqttStoreWrite> writes, CancellationToken cancellationToken);
}

public enum MqttStoreRecordKind
{
    Session,
    Retained,
}

/// <summary>A record to store (<see cref="Value"/> set) or to delete (null).</summary>
/// <param name="Summary">Queued and in-flight message counts of a session, stored beside it for operators (and tests).</param>
public readonly record struct MqttStoreWrite(MqttStoreRecordKind Kind, string Key, byte[]? Value, int Summary = 0);

public sealed record MqttStoredState(IReadOnlyList<KeyValuePair<string, byte[]>> Sessions, IReadOnlyList<KeyValuePair<string, byte[]>> Retained);
