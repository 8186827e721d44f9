namespace CloudEdge.Runtime;

/// <summary>
/// One delivered event with its envelope: a unique event id (stable across redeliveries, for
/// deduplication), its position in the stream, when it was published, and the producer's W3C trace
/// context (<c>traceparent</c>, <c>tracestate</c>), which the runtime continues on delivery.
/// </summary>
public sealed record StreamEvent<T>(
    StreamId StreamId,
    Guid EventId,
    StreamSequenceToken Token,
    DateTimeOffset Timestamp,
    string? TraceParent,
    string? TraceState,
    T Item);

/// <summary>Receives a stream's events, one at a time and in stream order.</summary>
public interface IAsyncObserver<T>
{
    /// <summary>Handles one event. Throwing makes the runtime retry it, and after the configured attempts dead-letter it.</summary>
    Task OnNextAsync(StreamEvent<T> streamEvent, CancellationToken cancellationToken);
}

/// <summary>An observer made of a delegate.</summary>
public sealed class DelegateAsyncObserver<T>(Func<StreamEvent<T>, CancellationToken, Task> onNext) : IAsyncObserver<T>
{
    public Task OnNextAsync(StreamEvent<T> streamEvent, CancellationToken cancellationToken) => onNext(streamEvent, cancellationToken);
}
