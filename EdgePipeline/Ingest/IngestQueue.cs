using System.Threading.Channels;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>
/// Where readings wait between the broker and the pipeline loop: a bounded channel with one reader. A QoS 1/2
/// publisher is held when it is full (its PUBACK delayed) and refused after a while; QoS 0 is dropped at once.
/// Every loss is counted and owed to the Silo in a drops item (<see cref="PendingDrops"/>).
/// </summary>
internal sealed class IngestQueue
{
    private readonly Channel<IngestWork> _channel;
    private readonly TimeSpan _fullWait;
    private readonly EdgeTelemetry _telemetry;
    private readonly TimeProvider _time;
    private long _dropped;
    private long _pendingDrops;

    public IngestQueue(int capacity, TimeSpan fullWait, EdgeTelemetry telemetry, TimeProvider time)
    {
        _fullWait = fullWait;
        _telemetry = telemetry;
        _time = time;
        _channel = Channel.CreateBounded<IngestWork>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public ChannelReader<IngestWork> Reader => _channel.Reader;

    /// <summary>Readings lost at ingest so far.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Losses not yet reported upstream.</summary>
    public long PendingDrops => Interlocked.Read(ref _pendingDrops);

    /// <summary>A drops item for <paramref name="count"/> losses committed.</summary>
    public void DropsReported(long count) => Interlocked.Add(ref _pendingDrops, -count);

    /// <summary>
    /// <paramref name="waitForJournal"/> (QoS 1/2): completes once the loop committed the reading, waiting for room
    /// up to the configured time. QoS 0: never waits.
    /// </summary>
    public async ValueTask<AcceptResult> AcceptAsync(SensorReading reading, bool waitForJournal, CancellationToken cancellationToken)
    {
        var work = new IngestWork(reading with { ReceivedAt = _time.GetUtcNow() }, waitForJournal);
        if (!_channel.Writer.TryWrite(work))
        {
            if (!waitForJournal) return Drop("ingest_full");
            using var timeout = new CancellationTokenSource(_fullWait, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
            try
            {
                await _channel.Writer.WriteAsync(work, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return Drop("ingest_full");
            }
            catch (ChannelClosedException)
            {
                return Drop("stopping");
            }
        }
        if (work.Completion is null) return AcceptResult.Accepted;
        return await work.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Wakes the loop without a reading (window closing, upkeep).</summary>
    public void Tick() => _channel.Writer.TryWrite(IngestWork.Tick);

    /// <summary>No more readings: the loop finishes what is queued.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    private AcceptResult Drop(string reason)
    {
        Interlocked.Increment(ref _dropped);
        // Reported upstream by the loop in a drops item (a refusal while stopping is not: the loop is gone, and v5 publishers resend).
        if (reason != "stopping") Interlocked.Increment(ref _pendingDrops);
        _telemetry.ReadingsDropped.Add(1, new KeyValuePair<string, object?>("reason", reason));
        return reason == "stopping" ? AcceptResult.Unavailable : AcceptResult.Full;
    }
}

/// <summary>A reading on its way to the journal, with the publisher's acknowledgement when it waits for one; or a tick.</summary>
internal sealed class IngestWork
{
    public static readonly IngestWork Tick = new();

    private IngestWork()
    {
    }

    public IngestWork(SensorReading reading, bool waitForJournal)
    {
        Reading = reading;
        if (waitForJournal) Completion = new TaskCompletionSource<AcceptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public SensorReading? Reading { get; }
    public TaskCompletionSource<AcceptResult>? Completion { get; }
}
