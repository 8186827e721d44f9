using CloudEdge.Grains;
using CloudEdge.Streaming;

namespace CloudEdge.Silo.Live;

/// <summary>The log of the platform's streams that the live endpoints resume and replay from (docs/live.md).</summary>
internal sealed class LiveLog(IServiceProvider services)
{
    private readonly IStreamLog log = services.GetRequiredKeyedService<IStreamLog>(PlatformStreams.Provider);

    public History<T> HistoryOf<T>(StreamId streamId) => new(log, streamId);

    /// <summary>The log of one stream: its last sequence (0 when empty) and a reader of what follows a sequence.</summary>
    internal sealed class History<T>(IStreamLog log, StreamId streamId)
    {
        public Task<long> LastSequenceAsync(CancellationToken cancellationToken) => log.GetLastSequenceAsync(streamId, cancellationToken);

        public async Task<IReadOnlyList<LiveEvent<T>>> Read(long afterSequence, int max, CancellationToken cancellationToken)
        {
            var events = await log.ReadAsync<T>(streamId, afterSequence, max, cancellationToken);
            return [.. events.Select(e => new LiveEvent<T>(e.Sequence, e.EventId, e.Timestamp, e.TraceParent, e.TraceState, e.Item))];
        }
    }
}
