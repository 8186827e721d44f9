namespace CloudEdge.Silo.Live;

/// <summary>
/// One event of a platform stream as the live endpoints send it: its per-stream sequence (the SSE id), the
/// envelope the stream provider stored with it, and the item.
/// </summary>
internal sealed record LiveEvent<T>(long Sequence, Guid EventId, DateTimeOffset Timestamp, string? TraceParent, string? TraceState, T Item);
