using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Streams;

namespace CloudEdge.Streaming;

/// <summary>
/// Appends what producers publish to the queue table (the event log) and creates the queues' receivers.
/// </summary>
internal sealed class PostgresQueueAdapter(
    string name,
    PostgresStreamOptions options,
    PostgresStreamStore store,
    QueueNotifications? notifications,
    HashRingBasedStreamQueueMapper queueMapper,
    Serializer serializer,
    TimeProvider timeProvider,
    StreamingInstruments instruments,
    ILoggerFactory loggerFactory) : IQueueAdapter
{
    internal const string TraceParentKey = "traceparent";
    internal const string TraceStateKey = "tracestate";

    private readonly KeyValuePair<string, object?> providerTag = new("cloudedge.stream.provider", name);

    public string Name => name;

    // Replay is IStreamLog's job (the SSE endpoints read it); the queue cache only serves live cursors.
    public bool IsRewindable => false;

    public StreamProviderDirection Direction => StreamProviderDirection.ReadWrite;

    public async Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (token is not null)
        {
            throw new ArgumentException($"Stream provider '{name}' assigns sequence numbers itself; publish without a token.", nameof(token));
        }

        var items = new List<NewStreamEvent>();
        foreach (var item in events)
        {
            if (item is null)
            {
                throw new ArgumentException($"Stream provider '{name}': a stream event cannot be null (stream {streamId}).", nameof(events));
            }

            items.Add(new NewStreamEvent(Guid.NewGuid(), item.GetType().FullName ?? item.GetType().Name, serializer.SerializeToArray<object>(item)));
        }

        if (items.Count == 0)
        {
            return;
        }

        var (traceParent, traceState) = CaptureTraceContext();
        var context = WithTraceContext(requestContext, traceParent, traceState);
        var queueId = (int)queueMapper.GetQueueForStream(streamId).GetNumericId();
        try
        {
            await store.AppendAsync(
                queueId,
                streamId,
                items,
                timeProvider.GetUtcNow(),
                traceParent,
                traceState,
                context is null ? null : serializer.SerializeToArray(context),
                notifications is not null,
                CancellationToken.None);
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            throw new StreamPublishException(
                $"Stream provider '{name}' could not store {items.Count} event(s) for stream {streamId}: PostgreSQL is unavailable or failed ({exception.Message}). The events were not acknowledged; retry later.",
                exception);
        }

        instruments.Appended.Add(items.Count, providerTag);
    }

    public IQueueAdapterReceiver CreateReceiver(QueueId queueId) =>
        new PostgresQueueAdapterReceiver(
            queueId,
            options,
            store,
            notifications?.For((int)queueId.GetNumericId()),
            serializer,
            timeProvider,
            instruments,
            loggerFactory.CreateLogger<PostgresQueueAdapterReceiver>());

    /// <summary>The producer's W3C context: the current activity's, else the one its RequestContext carries.</summary>
    internal static (string? TraceParent, string? TraceState) CaptureTraceContext()
    {
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } activity)
        {
            return (activity.Id, activity.TraceStateString);
        }

        return (RequestContext.Get(TraceParentKey) as string, RequestContext.Get(TraceStateKey) as string);
    }

    /// <summary>
    /// The RequestContext to store with the events, its trace entries set to the captured context so that
    /// Orleans' activity propagation continues the producer's trace when it imports them on delivery.
    /// </summary>
    private static Dictionary<string, object>? WithTraceContext(Dictionary<string, object>? requestContext, string? traceParent, string? traceState)
    {
        if (traceParent is null)
        {
            return requestContext is { Count: > 0 } ? requestContext : null;
        }

        var context = requestContext is null ? [] : new Dictionary<string, object>(requestContext);
        context[TraceParentKey] = traceParent;
        if (traceState is null)
        {
            context.Remove(TraceStateKey);
        }
        else
        {
            context[TraceStateKey] = traceState;
        }

        return context;
    }
}

/// <summary>
/// A publication that PostgreSQL did not acknowledge. Normally nothing of it was stored; only a connection lost
/// during the commit leaves it unknown, so a retry may repeat events (consumers drop repeats by content).
/// </summary>
[GenerateSerializer]
[Alias("CloudEdge.Streaming.StreamPublishException")]
public sealed class StreamPublishException : Exception
{
    public StreamPublishException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StreamPublishException(string message)
        : base(message)
    {
    }
}
