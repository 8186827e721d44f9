using System.Diagnostics;
using CloudEdge.Runtime;

namespace CloudEdge.Grains;

/// <summary>
/// An event a grain has stored but maybe not yet published: the item, the streams (<c>namespace/key</c>)
/// it goes to, and the trace context to publish it in. Kept in the grain's persisted state.
/// </summary>
public sealed class PendingEvent<T>
{
    public List<string> Streams { get; set; } = [];

    public T? Item { get; set; }

    public string? TraceParent { get; set; }
}

/// <summary>
/// Publishes a grain's events reliably: the grain adds them to its state (<see cref="Add"/>) before its
/// state write, so the change and the events are stored together; <see cref="PublishAsync"/> after the
/// write publishes them and drops them from the in-memory state, and the grain's next write stores
/// that. A crash between the write and the publish leaves them stored: the grain publishes leftovers
/// when it activates again, so an event is never lost, and after a crash it can be published twice.
/// </summary>
internal sealed class StreamOutbox<T>(Grain grain, Func<List<PendingEvent<T>>> pending, Func<CancellationToken, Task> writeState)
{
    /// <summary>Spans of publishing in an event's own trace; the host exports the source "CloudEdge.Grains".</summary>
    internal static readonly ActivitySource Source = new("CloudEdge.Grains");

    /// <summary>True when published events were dropped from the state in memory only: the grain should write before it deactivates.</summary>
    public bool Unstored { get; private set; }

    public bool HasPending => pending().Count > 0;

    public void Add(T item, List<string> streams, string? traceParent) =>
        pending().Add(new PendingEvent<T> { Item = item, Streams = streams, TraceParent = traceParent });

    /// <summary>Writes the grain's state (with the events added since the last write), then publishes them.</summary>
    public async Task SaveAsync(CancellationToken cancellationToken = default)
    {
        await writeState(cancellationToken);
        Unstored = false;
        await PublishAsync();
    }

    /// <summary>For OnActivateAsync: publishes what the last activation stored and did not publish (it stopped or failed first).</summary>
    public async Task ActivateAsync(CancellationToken cancellationToken)
    {
        if (HasPending)
        {
            await PublishAsync();
            await writeState(cancellationToken);
            Unstored = false;
        }
    }

    /// <summary>For OnDeactivateAsync: stores that the published events are gone, or the next activation would publish them again.</summary>
    public async Task DeactivateAsync(CancellationToken cancellationToken)
    {
        if (Unstored)
        {
            await writeState(cancellationToken);
            Unstored = false;
        }
    }

    /// <summary>Publishes every pending event, in order per stream (after a state write, or to retry a failed publish).</summary>
    public async Task PublishAsync()
    {
        var events = pending();
        if (events.Count == 0)
        {
            return;
        }

        var count = events.Count;
        var byStream = new Dictionary<string, List<PendingEvent<T>>>(StringComparer.Ordinal);
        foreach (var pendingEvent in events)
        {
            foreach (var stream in pendingEvent.Streams)
            {
                if (!byStream.TryGetValue(stream, out var list))
                {
                    byStream[stream] = list = [];
                }

                list.Add(pendingEvent);
            }
        }

        var provider = grain.GetStreamProvider(PlatformStreams.Provider);
        // Order matters within a stream only: the streams are written concurrently (the store commits them together).
        await Task.WhenAll(byStream.Select(pair => PublishStreamAsync(provider.GetStream<T>(StreamId.Parse(pair.Key)), pair.Value)));
        events.RemoveRange(0, count);
        Unstored = true;
    }

    /// <summary>
    /// One write per run of events sharing a trace context (the store keeps one producer context per
    /// write, and each event must carry its own: an alert's event belongs to the alert's trace).
    /// </summary>
    private static async Task PublishStreamAsync(IAsyncStream<T> stream, List<PendingEvent<T>> events)
    {
        var start = 0;
        while (start < events.Count)
        {
            var end = start + 1;
            while (end < events.Count && string.Equals(events[end].TraceParent, events[start].TraceParent, StringComparison.Ordinal))
            {
                end++;
            }

            using (InTrace(events[start].TraceParent, stream.StreamId))
            {
                await stream.OnNextBatchAsync([.. events.Skip(start).Take(end - start).Select(e => e.Item!)]);
            }

            start = end;
        }
    }

    /// <summary>
    /// Makes <paramref name="traceParent"/> the current context, so the runtime stores it (or its publish
    /// span, a child of it) with the events: a span when the host listens, else a bare activity that only
    /// carries the context.
    /// </summary>
    private static Activity? InTrace(string? traceParent, StreamId streamId)
    {
        if (!TraceContext.IsValid(traceParent) || !ActivityContext.TryParse(traceParent, null, out var parent))
        {
            return null;
        }

        var activity = Source.StartActivity($"publish {streamId.Namespace} event", ActivityKind.Internal, parent);
        if (activity is null)
        {
            activity = new Activity("publish event");
            activity.SetParentId(traceParent!);
            activity.Start();
        }

        return activity;
    }
}
