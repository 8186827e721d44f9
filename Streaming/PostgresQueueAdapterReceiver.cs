using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.Serialization;
using Orleans.Streams;

namespace CloudEdge.Streaming;

/// <summary>
/// Reads one queue for its pulling agent, in queue order from the queue's delivered checkpoint, and moves the
/// checkpoint when the agent reports events delivered. A silo that takes the queue over (rebalancing, or the
/// previous owner's death) starts at the checkpoint, so delivery is at-least-once. Also applies the
/// queue's retention, never to events beyond the checkpoint.
/// </summary>
internal sealed partial class PostgresQueueAdapterReceiver : IQueueAdapterReceiver
{
    // An append gets its queue number and commits under the queue's row lock, so a missing number is an
    // append still committing: wait for it rather than skip it. Only an event deleted by hand leaves a
    // gap that never fills; after this long the receiver steps over it.
    private static readonly TimeSpan GapTolerance = TimeSpan.FromSeconds(10);

    private readonly QueueId queueId;
    private readonly int queue;
    private readonly PostgresStreamOptions options;
    private readonly PostgresStreamStore store;
    private readonly QueueSignal? signal;
    private readonly Serializer serializer;
    private readonly TimeProvider timeProvider;
    private readonly StreamingInstruments instruments;
    private readonly ILogger logger;
    private readonly KeyValuePair<string, object?> providerTag;
    private readonly CancellationTokenSource stopping = new();

    private bool loaded;
    private long readPosition;
    private long savedCheckpoint;
    private long deliveredCheckpoint;
    private DateTimeOffset nextRetention;
    private long? gapAfter;
    private long gapSince;

    public PostgresQueueAdapterReceiver(
        QueueId queueId,
        PostgresStreamOptions options,
        PostgresStreamStore store,
        QueueSignal? signal,
        Serializer serializer,
        TimeProvider timeProvider,
        StreamingInstruments instruments,
        ILogger<PostgresQueueAdapterReceiver> logger)
    {
        this.queueId = queueId;
        queue = (int)queueId.GetNumericId();
        this.options = options;
        this.store = store;
        this.signal = signal;
        this.serializer = serializer;
        this.timeProvider = timeProvider;
        this.instruments = instruments;
        this.logger = logger;
        providerTag = new("cloudedge.stream.provider", store.Provider);
    }

    public Task Initialize(TimeSpan timeout) => Initialize(timeout, CancellationToken.None);

    public async Task Initialize(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        await LoadAsync(limit.Token);
    }

    public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount) => GetQueueMessagesAsync(maxCount, CancellationToken.None);

    public async Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount, CancellationToken cancellationToken)
    {
        // An Initialize that failed (database down at start) is retried here: the agent keeps pumping.
        await LoadAsync(cancellationToken);
        await ApplyRetentionIfDueAsync(cancellationToken);

        var max = maxCount < 0 ? options.ReadBatchSize : Math.Min(maxCount, options.ReadBatchSize);
        var events = await ReadContiguousAsync(max, cancellationToken);
        if (events.Count == 0 && signal is not null)
        {
            // Long-poll: an append's NOTIFY wakes this at once; otherwise the agent's next tick polls again.
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping.Token);
            if (await signal.WaitAsync(options.PollInterval, linked.Token))
            {
                events = await ReadContiguousAsync(max, cancellationToken);
            }
        }

        if (events.Count == 0)
        {
            return [];
        }

        readPosition = events[^1].QueueSequence;
        var containers = new List<IBatchContainer>(events.Count);
        foreach (var stored in events)
        {
            if (ToContainer(stored) is { } container)
            {
                containers.Add(container);
            }
        }

        return containers;
    }

    public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => MessagesDeliveredAsync(messages, CancellationToken.None);

    public async Task MessagesDeliveredAsync(IList<IBatchContainer> messages, CancellationToken cancellationToken)
    {
        // The queue cache purges the oldest events once every cursor has passed them: all before the highest are delivered too.
        var highest = messages.Count == 0 ? 0 : messages.Max(m => m.SequenceToken.SequenceNumber);
        if (highest > deliveredCheckpoint)
        {
            instruments.Delivered.Add(messages.Count, providerTag);
            deliveredCheckpoint = highest;
        }

        await SaveCheckpointAsync(cancellationToken);
    }

    public Task Shutdown(TimeSpan timeout) => Shutdown(timeout, CancellationToken.None);

    public async Task Shutdown(TimeSpan timeout, CancellationToken cancellationToken)
    {
        await stopping.CancelAsync();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await SaveCheckpointAsync(limit.Token);
        }
        catch (Exception exception)
        {
            // The next owner re-delivers from the last saved checkpoint: repeats, never loss.
            LogCheckpointNotSaved(exception, store.Provider, queueId, deliveredCheckpoint);
        }
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (loaded)
        {
            return;
        }

        var checkpoint = await store.LoadCheckpointAsync(queue, cancellationToken);
        readPosition = savedCheckpoint = deliveredCheckpoint = checkpoint;
        nextRetention = timeProvider.GetUtcNow();
        loaded = true;
        LogStarted(store.Provider, queueId, checkpoint);
    }

    private async Task SaveCheckpointAsync(CancellationToken cancellationToken)
    {
        if (!loaded || deliveredCheckpoint <= savedCheckpoint)
        {
            return;
        }

        var checkpoint = deliveredCheckpoint;
        await store.SaveCheckpointAsync(queue, checkpoint, timeProvider.GetUtcNow(), cancellationToken);
        savedCheckpoint = Math.Max(savedCheckpoint, checkpoint);
    }

    private async Task<IReadOnlyList<StoredStreamEvent>> ReadContiguousAsync(int max, CancellationToken cancellationToken)
    {
        var events = await store.ReadQueueAsync(queue, readPosition, max, cancellationToken);
        if (events.Count == 0)
        {
            return events;
        }

        var first = events[0].QueueSequence;
        if (first != readPosition + 1)
        {
            // Real time, not the provider's clock: a test's fake clock must not make a late commit look lost.
            if (gapAfter != readPosition)
            {
                gapAfter = readPosition;
                gapSince = Stopwatch.GetTimestamp();
                return [];
            }

            if (Stopwatch.GetElapsedTime(gapSince) < GapTolerance)
            {
                return [];
            }

            LogGapSkipped(store.Provider, queueId, readPosition + 1, first - 1);
        }

        gapAfter = null;
        var contiguous = 1;
        while (contiguous < events.Count && events[contiguous].QueueSequence == first + contiguous)
        {
            contiguous++;
        }

        return contiguous == events.Count ? events : events.Take(contiguous).ToList();
    }

    private PostgresBatchContainer? ToContainer(StoredStreamEvent stored)
    {
        try
        {
            var item = serializer.Deserialize<object>(stored.Payload)
                ?? throw new InvalidOperationException("The stored payload is a null item.");
            var context = stored.RequestContext is null ? null : serializer.Deserialize<Dictionary<string, object>>(stored.RequestContext);
            var token = new PostgresStreamSequenceToken(stored.QueueSequence, stored.StreamSequence, stored.EventId, stored.Timestamp, stored.TraceParent, stored.TraceState);
            return new PostgresBatchContainer(stored.StreamId, item, token, context);
        }
        catch (Exception exception)
        {
            // An event nobody here can read (its type gone) must not stop the queue; it stays in the log.
            LogUnreadable(exception, store.Provider, queueId, stored.QueueSequence, stored.StreamId.ToString(), stored.StreamSequence);
            return null;
        }
    }

    private async Task ApplyRetentionIfDueAsync(CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        if (now < nextRetention)
        {
            return;
        }

        nextRetention = now + options.RetentionPeriod;
        try
        {
            // Only what every subscriber has had, as far as the stored checkpoint says.
            var checkpoint = savedCheckpoint;
            var byAge = await store.DeleteOlderThanAsync(queue, checkpoint, now - options.RetentionMaxAge, cancellationToken);
            var byCount = await store.DeleteBeyondCountAsync(queue, checkpoint, options.RetentionMaxEventsPerStream, cancellationToken);
            if (byAge > 0)
            {
                instruments.RetentionDeleted.Add(byAge, providerTag, new("reason", "age"));
            }

            if (byCount > 0)
            {
                instruments.RetentionDeleted.Add(byCount, providerTag, new("reason", "count"));
            }

            if (byAge + byCount > 0)
            {
                LogRetention(store.Provider, queueId, byAge, byCount, checkpoint);
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogRetentionFailed(exception, store.Provider, queueId, options.RetentionPeriod);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Stream provider '{Provider}': receiving queue {QueueId} after its checkpoint {Checkpoint}.")]
    private partial void LogStarted(string provider, QueueId queueId, long checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stream provider '{Provider}': the checkpoint {Checkpoint} of queue {QueueId} was not saved at shutdown; its next owner repeats what followed the last saved one.")]
    private partial void LogCheckpointNotSaved(Exception exception, string provider, QueueId queueId, long checkpoint);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stream provider '{Provider}': queue {QueueId} has no events {First} to {Last} (deleted by hand?); continuing after them.")]
    private partial void LogGapSkipped(string provider, QueueId queueId, long first, long last);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stream provider '{Provider}': event {QueueSequence} of queue {QueueId} (stream {StreamId} #{StreamSequence}) cannot be deserialized and is not delivered; it stays in the log.")]
    private partial void LogUnreadable(Exception exception, string provider, QueueId queueId, long queueSequence, string streamId, long streamSequence);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stream provider '{Provider}': retention deleted {ByAge} event(s) by age and {ByCount} by count from queue {QueueId} (checkpoint {Checkpoint}).")]
    private partial void LogRetention(string provider, QueueId queueId, long byAge, long byCount, long checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stream provider '{Provider}': retention of queue {QueueId} failed; next attempt in {Period}.")]
    private partial void LogRetentionFailed(Exception exception, string provider, QueueId queueId, TimeSpan period);
}
