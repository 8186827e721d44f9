using Orleans.Runtime;

namespace CloudEdge.Streaming;

/// <summary>
/// The replayable log of a stream provider: the same rows its queues deliver from, by stream and sequence
/// number. Registered as a keyed singleton under the provider's name. Reads see committed events only;
/// retention may have removed the oldest.
/// </summary>
public interface IStreamLog
{
    /// <summary>The sequence number of the stream's last event ever appended, retained or not; 0 when none was.</summary>
    Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken);

    /// <summary>The stream's retained events numbered above <paramref name="afterSequence"/>, ascending, at most <paramref name="max"/>; events whose item is not a <typeparamref name="T"/> are left out.</summary>
    Task<IReadOnlyList<LoggedEvent<T>>> ReadAsync<T>(StreamId streamId, long afterSequence, int max, CancellationToken cancellationToken);
}

/// <summary>One event of a stream's log with its envelope (the same values as its <see cref="PostgresStreamSequenceToken"/>).</summary>
public sealed record LoggedEvent<T>(StreamId StreamId, long Sequence, Guid EventId, DateTimeOffset Timestamp, string? TraceParent, string? TraceState, T Item);

internal sealed class PostgresStreamLog(PostgresStreamStore store, Orleans.Serialization.Serializer serializer) : IStreamLog
{
    public Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken) =>
        store.GetLastSequenceAsync(streamId, cancellationToken);

    public async Task<IReadOnlyList<LoggedEvent<T>>> ReadAsync<T>(StreamId streamId, long afterSequence, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(afterSequence);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        var stored = await store.ReadStreamAsync(streamId, afterSequence, max, cancellationToken);
        var events = new List<LoggedEvent<T>>(stored.Count);
        foreach (var e in stored)
        {
            if (serializer.Deserialize<object>(e.Payload) is T item)
            {
                events.Add(new LoggedEvent<T>(e.StreamId, e.StreamSequence, e.EventId, e.Timestamp, e.TraceParent, e.TraceState, item));
            }
        }

        return events;
    }
}
