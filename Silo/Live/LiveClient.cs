using System.Threading.Channels;

namespace CloudEdge.Silo.Live;

/// <summary>Reads the logged events of a stream after a sequence, ascending, at most <c>max</c>.</summary>
internal delegate Task<IReadOnlyList<LiveEvent<T>>> LiveHistory<T>(long afterSequence, int max, CancellationToken cancellationToken);

/// <summary>
/// One live connection's buffer between the silo's shared feed and the socket. Offers never block the
/// feed (other connections share it): a full buffer spills into an overflow, and a client whose overflow
/// does not move for <c>grace</c> is slow: the buffer completes and the connection ends. The overflow holds
/// at most what the stream brings during one grace period.
/// </summary>
internal sealed class LiveClient<T> : IDisposable
{
    private readonly Channel<LiveEvent<T>> buffer;
    private readonly Queue<LiveEvent<T>> overflow = new();
    private readonly TimeSpan grace;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource ending;
    private readonly Lock sync = new();
    private ITimer? graceTimer;
    private bool slow;

    public LiveClient(int capacity, TimeSpan grace, TimeProvider time, CancellationTokenSource ending)
    {
        this.grace = grace;
        this.time = time;
        this.ending = ending;
        buffer = Channel.CreateBounded<LiveEvent<T>>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
    }

    public ChannelReader<LiveEvent<T>> Reader => buffer.Reader;

    public bool IsSlow
    {
        get
        {
            lock (sync)
            {
                return slow;
            }
        }
    }

    /// <summary>Called by the feed for every event of the stream.</summary>
    public void Offer(LiveEvent<T> liveEvent)
    {
        lock (sync)
        {
            if (slow || ending.IsCancellationRequested)
            {
                return;
            }

            if (overflow.Count == 0 && buffer.Writer.TryWrite(liveEvent))
            {
                return;
            }

            overflow.Enqueue(liveEvent);
            graceTimer ??= time.CreateTimer(static state => ((LiveClient<T>)state!).GraceExpired(), this, grace, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Called by the writer after it took events: moves the overflow into the buffer, in order.</summary>
    public void Refill()
    {
        lock (sync)
        {
            var moved = false;
            while (overflow.Count > 0 && buffer.Writer.TryWrite(overflow.Peek()))
            {
                overflow.Dequeue();
                moved = true;
            }

            if (overflow.Count == 0)
            {
                graceTimer?.Dispose();
                graceTimer = null;
            }
            else if (moved)
            {
                // The client reads: it gets a new grace for the rest.
                graceTimer?.Change(grace, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void GraceExpired()
    {
        lock (sync)
        {
            if (overflow.Count > 0)
            {
                MarkSlow();
            }
        }
    }

    private void MarkSlow()
    {
        slow = true;
        overflow.Clear();
        buffer.Writer.TryComplete();
        graceTimer?.Dispose();
        graceTimer = null;
        // Cancelling runs the connection's callbacks: not under the lock, and not on the feed's delivery.
        _ = Task.Run(() =>
        {
            try
            {
                ending.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The connection ended meanwhile.
            }
        });
    }

    public void Dispose()
    {
        lock (sync)
        {
            graceTimer?.Dispose();
            graceTimer = null;
            buffer.Writer.TryComplete();
        }
    }
}
