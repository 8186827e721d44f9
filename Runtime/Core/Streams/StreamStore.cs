namespace CloudEdge.Runtime.Streams;

/// <summary>An event to append: the store assigns its sequence number.</summary>
internal readonly record struct NewStreamEvent(Guid EventId, DateTimeOffset Timestamp, string? TraceParent, string? TraceState, string Payload);

/// <summary>An event as stored, with its per-stream sequence number.</summary>
internal sealed record StoredStreamEvent(long Sequence, Guid EventId, DateTimeOffset Timestamp, string? TraceParent, string? TraceState, string Payload);

/// <summary>
/// A durable subscription: who receives (a grain, or nobody for an external observer), the item type,
/// and the next sequence number to deliver (the cursor).
/// </summary>
internal sealed record SubscriptionRecord(Guid Id, StreamId StreamId, GrainId? Grain, string ItemType, bool Implicit, long NextSequence);

/// <summary>
/// Where a stream provider keeps events, subscriptions, cursors and dead letters. Appends to one stream
/// are serialized, so sequence numbers follow append order.
/// </summary>
internal interface IStreamStore : IDisposable
{
    /// <summary>Appends in order; returns the sequence number of each event.</summary>
    Task<long[]> AppendAsync(StreamId streamId, IReadOnlyList<NewStreamEvent> events, CancellationToken cancellationToken);

    /// <summary>Events with sequence number at least <paramref name="fromSequence"/>, in order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredStreamEvent>> ReadAsync(StreamId streamId, long fromSequence, int limit, CancellationToken cancellationToken);

    /// <summary>The sequence number of the stream's last event ever appended (0 if none), retained or not.</summary>
    Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken);

    /// <summary>Stores a subscription unless one with its id exists; returns the stored one.</summary>
    Task<SubscriptionRecord> AddSubscriptionAsync(SubscriptionRecord subscription, CancellationToken cancellationToken);

    Task RemoveSubscriptionAsync(Guid subscriptionId, CancellationToken cancellationToken);

    Task<IReadOnlyList<SubscriptionRecord>> LoadSubscriptionsAsync(CancellationToken cancellationToken);

    Task SaveCursorAsync(Guid subscriptionId, long nextSequence, CancellationToken cancellationToken);

    Task AddDeadLetterAsync(StreamDeadLetter deadLetter, CancellationToken cancellationToken);

    Task<IReadOnlyList<StreamDeadLetter>> GetDeadLettersAsync(StreamId? streamId, int limit, CancellationToken cancellationToken);

    /// <summary>Deletes events published before <paramref name="olderThan"/> and all but the last <paramref name="maxPerStream"/> of each stream; returns how many.</summary>
    Task<long> TrimAsync(DateTimeOffset? olderThan, long? maxPerStream, CancellationToken cancellationToken);
}
