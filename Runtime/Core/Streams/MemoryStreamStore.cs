namespace CloudEdge.Runtime.Streams;

/// <summary>Events, subscriptions and dead letters in memory: durable across deactivation, not across restarts.</summary>
internal sealed class MemoryStreamStore : IStreamStore
{
    private readonly Lock gate = new();
    private readonly Dictionary<StreamId, StreamLog> streams = [];
    private readonly Dictionary<Guid, SubscriptionRecord> subscriptions = [];
    private readonly List<StreamDeadLetter> deadLetters = [];

    public Task<long[]> AppendAsync(StreamId streamId, IReadOnlyList<NewStreamEvent> events, CancellationToken cancellationToken)
    {
        var sequences = new long[events.Count];
        lock (gate)
        {
            if (!streams.TryGetValue(streamId, out var log))
            {
                streams[streamId] = log = new StreamLog();
            }

            for (var i = 0; i < events.Count; i++)
            {
                var e = events[i];
                var sequence = ++log.Last;
                log.Events.Add(new StoredStreamEvent(sequence, e.EventId, e.Timestamp, e.TraceParent, e.TraceState, e.Payload));
                sequences[i] = sequence;
            }
        }

        return Task.FromResult(sequences);
    }

    public Task<IReadOnlyList<StoredStreamEvent>> ReadAsync(StreamId streamId, long fromSequence, int limit, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (!streams.TryGetValue(streamId, out var log) || log.Events.Count == 0)
            {
                return Task.FromResult<IReadOnlyList<StoredStreamEvent>>([]);
            }

            // Sequence numbers are contiguous within the retained events, so the start is an index.
            var start = (int)Math.Clamp(fromSequence - log.Events[0].Sequence, 0, log.Events.Count);
            var count = Math.Min(limit, log.Events.Count - start);
            return Task.FromResult<IReadOnlyList<StoredStreamEvent>>(count <= 0 ? [] : log.Events.GetRange(start, count));
        }
    }

    public Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return Task.FromResult(streams.TryGetValue(streamId, out var log) ? log.Last : 0);
        }
    }

    public Task<SubscriptionRecord> AddSubscriptionAsync(SubscriptionRecord subscription, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (!subscriptions.TryGetValue(subscription.Id, out var existing))
            {
                subscriptions[subscription.Id] = existing = subscription;
            }

            return Task.FromResult(existing);
        }
    }

    public Task RemoveSubscriptionAsync(Guid subscriptionId, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            subscriptions.Remove(subscriptionId);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<SubscriptionRecord>> LoadSubscriptionsAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return Task.FromResult<IReadOnlyList<SubscriptionRecord>>([.. subscriptions.Values]);
        }
    }

    public Task SaveCursorAsync(Guid subscriptionId, long nextSequence, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (subscriptions.TryGetValue(subscriptionId, out var existing))
            {
                subscriptions[subscriptionId] = existing with { NextSequence = nextSequence };
            }
        }

        return Task.CompletedTask;
    }

    public Task AddDeadLetterAsync(StreamDeadLetter deadLetter, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            deadLetters.Add(deadLetter);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<StreamDeadLetter>> GetDeadLettersAsync(StreamId? streamId, int limit, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return Task.FromResult<IReadOnlyList<StreamDeadLetter>>(
                [.. deadLetters.Where(d => streamId is null || d.StreamId == streamId.Value).Take(limit)]);
        }
    }

    public Task<long> TrimAsync(DateTimeOffset? olderThan, long? maxPerStream, CancellationToken cancellationToken)
    {
        long removed = 0;
        lock (gate)
        {
            foreach (var log in streams.Values)
            {
                var drop = 0;
                if (olderThan is { } cutoff)
                {
                    while (drop < log.Events.Count && log.Events[drop].Timestamp < cutoff)
                    {
                        drop++;
                    }
                }

                if (maxPerStream is { } max && log.Events.Count - drop > max)
                {
                    drop = (int)(log.Events.Count - max);
                }

                log.Events.RemoveRange(0, drop);
                removed += drop;
            }
        }

        return Task.FromResult(removed);
    }

    public void Dispose()
    {
    }

    private sealed class StreamLog
    {
        public List<StoredStreamEvent> Events { get; } = [];

        public long Last { get; set; }
    }
}
