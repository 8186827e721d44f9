using Orleans.Runtime;
using Orleans.Streams;

namespace CloudEdge.Streaming;

/// <summary>
/// One event as a pulling agent caches and delivers it. It carries the producer's RequestContext, with the
/// producer's trace context in it, which Orleans imports around the delivery so the consumer's grain call
/// continues the producer's trace.
/// </summary>
[GenerateSerializer]
[Alias("CloudEdge.Streaming.PostgresBatchContainer")]
internal sealed class PostgresBatchContainer(StreamId streamId, object item, PostgresStreamSequenceToken token, Dictionary<string, object>? requestContext) : IBatchContainer
{
    [Id(0)]
    public StreamId StreamId { get; } = streamId;

    [Id(1)]
    public object Item { get; } = item;

    [Id(2)]
    public PostgresStreamSequenceToken Token { get; } = token;

    [Id(3)]
    public Dictionary<string, object>? RequestContext { get; } = requestContext;

    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() =>
        Item is T typed ? [Tuple.Create<T, StreamSequenceToken>(typed, Token)] : [];

    public bool ImportRequestContext()
    {
        if (RequestContext is not { Count: > 0 })
        {
            return false;
        }

        RequestContextExtensions.Import(RequestContext);
        return true;
    }

    public override string ToString() => $"[PostgresBatchContainer: Stream={StreamId}, {Token}]";
}
