namespace CloudEdge.Silo.Live;

/// <summary>
/// The stream log the live endpoints resume and replay from (docs/live.md). Until the durable provider
/// registers its log, a stream has no history: resume and replay start from now.
/// </summary>
internal sealed class LiveLog
{
    public History<T> HistoryOf<T>(StreamId streamId) => new(streamId, null);

    /// <summary>The log of one stream: its last sequence (0 when empty) and a reader, or none.</summary>
    internal sealed class History<T>(StreamId streamId, LiveHistory<T>? read)
    {
        public StreamId StreamId { get; } = streamId;

        public LiveHistory<T>? Read { get; } = read;

        public Task<long> LastSequenceAsync(CancellationToken cancellationToken) => Task.FromResult(0L);
    }
}
