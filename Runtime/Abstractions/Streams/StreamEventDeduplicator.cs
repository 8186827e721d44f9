namespace CloudEdge.Runtime;

/// <summary>
/// Remembers the ids of the last <see cref="Capacity"/> events seen, so that a consumer of an
/// at-least-once stream can drop redeliveries. Bounded: the oldest id is forgotten first. Not thread-safe
/// (a grain's turns never overlap; other consumers lock around it).
/// </summary>
public sealed class StreamEventDeduplicator
{
    private readonly HashSet<Guid> seen;
    private readonly Queue<Guid> order;

    public StreamEventDeduplicator(int capacity = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        seen = new HashSet<Guid>(capacity);
        order = new Queue<Guid>(capacity);
    }

    public int Capacity { get; }

    public int Count => seen.Count;

    /// <summary>True the first time an event id is seen (handle it); false for a duplicate (skip it).</summary>
    public bool TryMarkSeen(Guid eventId)
    {
        if (!seen.Add(eventId))
        {
            return false;
        }

        order.Enqueue(eventId);
        if (order.Count > Capacity)
        {
            seen.Remove(order.Dequeue());
        }

        return true;
    }

    public bool TryMarkSeen<T>(StreamEvent<T> streamEvent)
    {
        ArgumentNullException.ThrowIfNull(streamEvent);
        return TryMarkSeen(streamEvent.EventId);
    }
}
