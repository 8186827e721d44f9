using System.Collections.Concurrent;
using CloudEdge.Grains;
using CloudEdge.Streaming;
using Orleans.Streams;

namespace CloudEdge.Silo.Live;

/// <summary>
/// One Orleans stream subscription per silo per stream, shared by every listener on this silo (SSE
/// connections, long-polls): the events fan out in process. The subscription is made when the first
/// listener joins and removed when the last one leaves.
/// </summary>
internal sealed partial class LiveFeeds(IClusterClient client, TimeProvider time, ILogger<LiveFeeds> logger)
{
    private readonly ConcurrentDictionary<StreamId, Feed> feeds = new();
    private readonly SemaphoreSlim gate = new(1, 1);

    /// <summary>
    /// Adds a listener to the stream's feed (subscribing the silo when it is the first). <paramref name="offer"/> must
    /// not block: it runs on the subscription's delivery, shared by all listeners. Dispose the result to leave.
    /// </summary>
    public async Task<IAsyncDisposable> JoinAsync<T>(StreamId streamId, Action<LiveEvent<T>> offer, CancellationToken cancellationToken)
    {
        var listener = new Listener<T>(offer);
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (!feeds.TryGetValue(streamId, out var feed))
            {
                var typed = new Feed<T>(streamId, time);
                var stream = client.GetStreamProvider(PlatformStreams.Provider).GetStream<T>(streamId);
                typed.Handle = await stream.SubscribeAsync(typed);
                feeds[streamId] = feed = typed;
            }

            ((Feed<T>)feed).Add(listener);
        }
        finally
        {
            gate.Release();
        }

        return new Membership(this, streamId, listener);
    }

    /// <summary>True while this silo has listeners on the stream.</summary>
    public bool IsFollowed(StreamId streamId) => feeds.ContainsKey(streamId);

    private async Task LeaveAsync(StreamId streamId, object listener)
    {
        await gate.WaitAsync(CancellationToken.None);
        try
        {
            if (feeds.TryGetValue(streamId, out var feed) && feed.Remove(listener) == 0)
            {
                feeds.TryRemove(streamId, out _);
                try
                {
                    await feed.UnsubscribeAsync();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The subscription's owner (this silo) is going away or the pub-sub store failed: the events stop anyway.
                    LogUnsubscribeFailed(logger, e, streamId.ToString());
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the live subscription of {StreamId}")]
    private static partial void LogUnsubscribeFailed(ILogger logger, Exception exception, string streamId);

    private abstract class Feed
    {
        public abstract int Remove(object listener);

        public abstract Task UnsubscribeAsync();
    }

    private sealed class Feed<T>(StreamId streamId, TimeProvider time) : Feed, IAsyncObserver<T>
    {
        private Listener<T>[] listeners = [];
        private long fallbackSequence;

        public StreamSubscriptionHandle<T>? Handle { get; set; }

        public void Add(Listener<T> listener)
        {
            lock (this)
            {
                listeners = [.. listeners, listener];
            }
        }

        public override int Remove(object listener)
        {
            lock (this)
            {
                listeners = [.. listeners.Where(l => !ReferenceEquals(l, listener))];
                return listeners.Length;
            }
        }

        public override Task UnsubscribeAsync() => Handle?.UnsubscribeAsync() ?? Task.CompletedTask;

        public Task OnNextAsync(T item, StreamSequenceToken? token = null)
        {
            var liveEvent = Envelope(item, token);
            foreach (var listener in Volatile.Read(ref listeners))
            {
                listener.Offer(liveEvent);
            }

            return Task.CompletedTask;
        }

        public Task OnCompletedAsync() => Task.CompletedTask;

        public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

        private LiveEvent<T> Envelope(T item, StreamSequenceToken? token) => token is PostgresStreamSequenceToken logged
            ? new(logged.StreamSequence, logged.EventId, logged.Timestamp, logged.TraceParent, logged.TraceState, item)
            // A provider without per-stream sequences still gives ids that grow within this feed.
            : new(Interlocked.Increment(ref fallbackSequence), Guid.NewGuid(), time.GetUtcNow(), null, null, item);

        public override string ToString() => streamId.ToString();
    }

    private sealed class Listener<T>(Action<LiveEvent<T>> offer)
    {
        public void Offer(LiveEvent<T> liveEvent) => offer(liveEvent);
    }

    private sealed class Membership(LiveFeeds owner, StreamId streamId, object listener) : IAsyncDisposable
    {
        private int left;

        public ValueTask DisposeAsync() =>
            Interlocked.Exchange(ref left, 1) == 0 ? new ValueTask(owner.LeaveAsync(streamId, listener)) : ValueTask.CompletedTask;
    }
}
