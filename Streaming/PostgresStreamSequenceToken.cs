using System.Globalization;
using Orleans.Streams;

namespace CloudEdge.Streaming;

/// <summary>
/// The position of one event of a PostgreSQL stream, and its envelope. Ordering (<see cref="SequenceNumber"/>) is
/// the event's place in its queue, which Orleans' queue cache compares across the streams of a queue;
/// <see cref="StreamSequence"/> is its place in its own stream (1, 2, 3... with no gap), which consumers use
/// to resume and to drop the repeats that at-least-once delivery may bring.
/// </summary>
[GenerateSerializer]
[Alias("CloudEdge.Streaming.PostgresStreamSequenceToken")]
[Immutable]
public sealed class PostgresStreamSequenceToken : StreamSequenceToken
{
    public PostgresStreamSequenceToken(long queueSequence, long streamSequence, Guid eventId, DateTimeOffset timestamp, string? traceParent, string? traceState)
    {
        SequenceNumber = queueSequence;
        StreamSequence = streamSequence;
        EventId = eventId;
        Timestamp = timestamp;
        TraceParent = traceParent;
        TraceState = traceState;
    }

    /// <summary>The event's sequence number in its queue.</summary>
    [Id(0)]
    public override long SequenceNumber { get; protected set; }

    /// <summary>Always 0: every event is its own batch container.</summary>
    [Id(1)]
    public override int EventIndex { get; protected set; }

    /// <summary>The event's sequence number in its stream: 1 for the first event ever appended, never reused.</summary>
    [Id(2)]
    public long StreamSequence { get; private set; }

    /// <summary>Given at publication; the same on every redelivery.</summary>
    [Id(3)]
    public Guid EventId { get; private set; }

    /// <summary>When the event was appended (the publishing silo's clock).</summary>
    [Id(4)]
    public DateTimeOffset Timestamp { get; private set; }

    /// <summary>The producer's W3C trace context at publication, if it had one.</summary>
    [Id(5)]
    public string? TraceParent { get; private set; }

    [Id(6)]
    public string? TraceState { get; private set; }

    public override bool Equals(StreamSequenceToken? other) =>
        other is not null && other.SequenceNumber == SequenceNumber && other.EventIndex == EventIndex;

    public override bool Equals(object? obj) => obj is StreamSequenceToken token && Equals(token);

    public override int GetHashCode() => HashCode.Combine(SequenceNumber, EventIndex);

    public override int CompareTo(StreamSequenceToken? other)
    {
        if (other is null)
        {
            return 1;
        }

        var difference = SequenceNumber.CompareTo(other.SequenceNumber);
        return difference != 0 ? difference : EventIndex.CompareTo(other.EventIndex);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"[PostgresStreamSequenceToken: Queue={SequenceNumber}, Stream={StreamSequence}, EventId={EventId}]");
}
