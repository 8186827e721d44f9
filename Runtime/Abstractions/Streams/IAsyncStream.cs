namespace CloudEdge.Runtime;

/// <summary>
/// A stream of events of type <typeparamref name="T"/>, named by <see cref="StreamId"/> within a stream
/// provider. Producing appends to the stream; delivery is at-least-once and in order per subscription.
/// </summary>
public interface IAsyncStream<T>
{
    StreamId StreamId { get; }

    string ProviderName { get; }

    /// <summary>Publishes one event; returns its token once the provider has accepted (for a durable provider: stored) it.</summary>
    Task<StreamSequenceToken> OnNextAsync(T item, CancellationToken cancellationToken = default);

    /// <summary>Publishes events in order as one write; returns the token of each.</summary>
    Task<IReadOnlyList<StreamSequenceToken>> OnNextBatchAsync(IEnumerable<T> items, CancellationToken cancellationToken = default);

    /// <summary>
    /// Subscribes from <paramref name="from"/> (inclusive) or, when null, from the next event published.
    /// Called in a grain, the subscription belongs to the grain: it is stored, survives deactivation and
    /// restarts, and delivery activates the grain. Called elsewhere, it lives until unsubscribed or the silo stops.
    /// </summary>
    Task<StreamSubscriptionHandle<T>> SubscribeAsync(IAsyncObserver<T> observer, StreamSequenceToken? from = null, CancellationToken cancellationToken = default);

    /// <summary>The calling grain's subscriptions to this stream with item type <typeparamref name="T"/> (every subscription of the stream, when called outside a grain).</summary>
    Task<IReadOnlyList<StreamSubscriptionHandle<T>>> GetAllSubscriptionHandles(CancellationToken cancellationToken = default);
}

/// <summary>A subscription to a stream.</summary>
public abstract class StreamSubscriptionHandle<T>
{
    public abstract Guid HandleId { get; }

    public abstract StreamId StreamId { get; }

    public abstract string ProviderName { get; }

    /// <summary>Ends the subscription; nothing more is delivered to it.</summary>
    public abstract Task UnsubscribeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Attaches <paramref name="observer"/> to this subscription in the current activation (typically in
    /// <c>OnActivateAsync</c>), optionally moving its position to <paramref name="from"/>.
    /// </summary>
    public abstract Task<StreamSubscriptionHandle<T>> ResumeAsync(IAsyncObserver<T> observer, StreamSequenceToken? from = null, CancellationToken cancellationToken = default);
}

/// <summary>Delegate forms of <see cref="IAsyncStream{T}.SubscribeAsync"/>.</summary>
public static class AsyncStreamExtensions
{
    public static Task<StreamSubscriptionHandle<T>> SubscribeAsync<T>(this IAsyncStream<T> stream, Func<StreamEvent<T>, Task> onNext, StreamSequenceToken? from = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(onNext);
        return stream.SubscribeAsync(new DelegateAsyncObserver<T>((e, _) => onNext(e)), from, cancellationToken);
    }

    public static Task<StreamSubscriptionHandle<T>> SubscribeAsync<T>(this IAsyncStream<T> stream, Func<T, StreamSequenceToken, Task> onNext, StreamSequenceToken? from = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(onNext);
        return stream.SubscribeAsync(new DelegateAsyncObserver<T>((e, _) => onNext(e.Item, e.Token)), from, cancellationToken);
    }

    public static Task<StreamSubscriptionHandle<T>> ResumeAsync<T>(this StreamSubscriptionHandle<T> handle, Func<StreamEvent<T>, Task> onNext, StreamSequenceToken? from = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentNullException.ThrowIfNull(onNext);
        return handle.ResumeAsync(new DelegateAsyncObserver<T>((e, _) => onNext(e)), from, cancellationToken);
    }
}
