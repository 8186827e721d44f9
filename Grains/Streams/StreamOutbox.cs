using System.Diagnostics;
using System.Diagnostics.Metrics;
using Orleans.Streams;
namespace CloudEdge.Grains;

/// <summary>
/// An event a grain has stored but maybe not yet published: the item, the streams (<c>namespace/key</c>)
/// it goes to, those it is already on, and the trace context to publish it in. Kept in the grain's persisted state.
/// </summary>
[GenerateSerializer]
[Alias("cloudedge.PendingEvent")]
public sealed class PendingEvent<T>
{
    [Id(0)]
    public List<string> Streams { get; set; } = [];

    /// <summary>The streams it was published on by an attempt that failed on others: a retry skips them.</summary>
    [Id(1)]
    public List<string> Published { get; set; } = [];

    [Id(2)]
    public T? Item { get; set; }

    [Id(3)]
    public string? TraceParent { get; set; }
}

/// <summary>
/// Publishes a grain's events reliably: the grain adds them to its state (<see cref="Add"/>) before its
/// state write, so the change and the events are stored together; <see cref="SaveAsync"/> publishes them
/// after the write and drops them from the in-memory state, and the grain's next write stores that. A
/// crash between the write and the publish leaves them stored: the grain publishes leftovers when it
/// activates again, so an event is never lost, and after a crash it can be published twice. A publish
/// that fails after the write does not fail the caller (the change is committed): the events stay
/// pending, the streams they did reach are recorded, and a one-shot timer retries with backoff.
/// </summary>
internal sealed class StreamOutbox<T>(Grain grain, Func<List<PendingEvent<T>>> pending, Func<CancellationToken, Task> writeState)
{
    /// <summary>Spans of publishing in an event's own trace; the host exports the source "CloudEdge.Grains".</summary>
    internal static readonly ActivitySource Source = new("CloudEdge.Grains");

    private static readonly Meter Meter = new("CloudEdge.Grains");

    private static readonly Counter<long> Failures = Meter.CreateCounter<long>(
        "cloudedge.grains.outbox.publish_failures", "{attempt}", "Attempts to publish a grain's stored events that failed; the events stay pending and are retried.");

    internal static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);

    internal static readonly TimeSpan MaxRetry = TimeSpan.FromMinutes(1);

    private TimeSpan retryDelay = FirstRetry;
    private IGrainTimer? retryTimer;

    /// <summary>True when published events were dropped from the state in memory only: the grain should write before it deactivates.</summary>
    public bool Unstored { get; private set; }

    public bool HasPending => pending().Count > 0;

    public void Add(T item, List<string> streams, string? traceParent) =>
        pending().Add(new PendingEvent<T> { Item = item, Streams = streams, TraceParent = traceParent });

    /// <summary>Writes the grain's state (with the events added since the last write), then publishes them (a failed publish is retried later, not thrown).</summary>
    public async Task SaveAsync(CancellationToken cancellationToken = default)
    {
        await writeState(cancellationToken);
        Unstored = false;
        await PublishAsync(cancellationToken);
    }

    /// <summary>For OnActivateAsync: publishes what the last activation stored and did not publish (it stopped or failed first).</summary>
    public async Task ActivateAsync(CancellationToken cancellationToken)
    {
        if (HasPending && await PublishAsync(cancellationToken))
        {
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

    /// <summary>
    /// Publishes every pending event on the streams it is not on yet, in order per stream. False when a
    /// stream failed: the failure is recorded and a retry is scheduled; the caller's change stands.
    /// </summary>
    public async Task<bool> PublishAsync(CancellationToken cancellationToken = default)
    {
        var events = pending();
        if (events.Count == 0)
        {
            return true;
        }

        var byStream = new Dictionary<string, List<PendingEvent<T>>>(StringComparer.Ordinal);
        foreach (var pendingEvent in events)
        {
            foreach (var stream in pendingEvent.Streams.Except(pendingEvent.Published, StringComparer.Ordinal))
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
        var results = await Task.WhenAll(byStream.Select(pair => PublishStreamAsync(provider.GetStream<T>(PlatformStreams.Parse(pair.Key)), pair.Value)));
        var failed = new List<string>();
        Exception? failure = null;
        foreach (var (stream, result) in byStream.Keys.Zip(results))
        {
            foreach (var done in byStream[stream].Take(result.Published))
            {
                done.Published.Add(stream);
                Unstored = true;
            }

            if (result.Failure is not null)
            {
                failed.Add(stream);
                failure ??= result.Failure;
            }
        }

        // Events added while publishing are on no stream yet, so they stay.
        Unstored |= events.RemoveAll(e => e.Streams.All(s => e.Published.Contains(s, StringComparer.Ordinal))) > 0;
        if (failure is null)
        {
            retryDelay = FirstRetry;
            return true;
        }

        RecordFailure(failure, failed, events.Count);
        ScheduleRetry();
        if (Unstored)
        {
            await StoreProgressAsync(cancellationToken);
        }

        return false;
    }

    /// <summary>Stores which streams the events reached, so a crash before the retry does not repeat them there.</summary>
    private async Task StoreProgressAsync(CancellationToken cancellationToken)
    {
        try
        {
            await writeState(cancellationToken);
            Unstored = false;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The committed change stands and the retry writes again; the state in memory was reloaded, so the
            // progress is lost and the retry repeats those streams (as after a crash).
            Activity.Current?.AddException(exception);
        }
    }

    private void RecordFailure(Exception failure, List<string> streams, int pendingCount)
    {
        var grainId = grain.GetGrainId();
        Failures.Add(1, new KeyValuePair<string, object?>("grain.type", grainId.Type.ToString()));
        using var activity = Source.StartActivity("stream publish failed", ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("cloudedge.grain.id", grainId.ToString());
            activity.SetTag("cloudedge.streams", string.Join(' ', streams));
            activity.SetTag("cloudedge.outbox.pending", pendingCount);
            activity.SetTag("cloudedge.outbox.retry_in_ms", (long)retryDelay.TotalMilliseconds);
            activity.AddException(failure);
            activity.SetStatus(ActivityStatusCode.Error, failure.Message);
        }
    }

    /// <summary>
    /// One retry at a time on the runtime's clock, 1 s doubling to 1 min while the store keeps failing. A
    /// success writes the state so the published events leave it (the next activation would repeat them).
    /// </summary>
    private void ScheduleRetry()
    {
        if (retryTimer is not null)
        {
            return;
        }

        var delay = retryDelay;
        retryDelay = TimeSpan.FromTicks(Math.Min(retryDelay.Ticks * 2, MaxRetry.Ticks));
        retryTimer = grain.RegisterGrainTimer(
            async cancellationToken =>
            {
                // Disposed only at the end: disposing a timer cancels the token of its running tick.
                using var spent = retryTimer;
                retryTimer = null;
                if (HasPending && await PublishAsync(cancellationToken) && Unstored)
                {
                    await writeState(cancellationToken);
                    Unstored = false;
                }
            },
            // A retry keeps the activation from idle collection: collected, its events would wait for the grain's next call.
            new GrainTimerCreationOptions(delay, Timeout.InfiniteTimeSpan) { KeepAlive = true });
    }

    /// <summary>
    /// One write per run of events sharing a trace context (the store keeps one producer context per
    /// write, and each event must carry its own: an alert's event belongs to the alert's trace). Stops at
    /// the first failure, so a stream never gets an event before an earlier one: the count published and the failure.
    /// </summary>
    private static async Task<(int Published, Exception? Failure)> PublishStreamAsync(IAsyncStream<T> stream, List<PendingEvent<T>> events)
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
                try
                {
                    await stream.OnNextBatchAsync(events.Skip(start).Take(end - start).Select(e => e.Item!).ToList());
                }
                catch (Exception exception)
                {
                    return (start, exception);
                }
            }

            start = end;
        }

        return (start, null);
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

        var activity = Source.StartActivity($"publish {streamId.GetNamespace()} event", ActivityKind.Internal, parent);
        if (activity is null)
        {
            activity = new Activity("publish event");
            activity.SetParentId(traceParent!);
            activity.Start();
        }

        return activity;
    }
}
