namespace CloudEdge.Runtime;

/// <summary>
/// The position of an event in its stream: sequence numbers start at 1 and grow by one per event of that
/// stream. Subscribing from a token delivers that event and every later one (a rewind); subscribing
/// without a token delivers events published from now on.
/// </summary>
public sealed record StreamSequenceToken : IComparable<StreamSequenceToken>
{
    public StreamSequenceToken(long sequenceNumber)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceNumber, 1);
        SequenceNumber = sequenceNumber;
    }

    /// <summary>The first event a stream can hold: subscribing from it replays everything still retained.</summary>
    public static StreamSequenceToken Beginning { get; } = new(1);

    public long SequenceNumber { get; }

    public int CompareTo(StreamSequenceToken? other) => other is null ? 1 : SequenceNumber.CompareTo(other.SequenceNumber);

    public static bool operator <(StreamSequenceToken left, StreamSequenceToken right) => left.CompareTo(right) < 0;

    public static bool operator >(StreamSequenceToken left, StreamSequenceToken right) => left.CompareTo(right) > 0;

    public static bool operator <=(StreamSequenceToken left, StreamSequenceToken right) => left.CompareTo(right) <= 0;

    public static bool operator >=(StreamSequenceToken left, StreamSequenceToken right) => left.CompareTo(right) >= 0;

    /// <summary>The token of the event after this one.</summary>
    public StreamSequenceToken Next() => new(SequenceNumber + 1);

    public override string ToString() => SequenceNumber.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
