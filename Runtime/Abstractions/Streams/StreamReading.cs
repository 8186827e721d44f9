using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CloudEdge.Runtime;

/// <summary>Reading a stream as an async sequence, for code outside grains (Server-Sent Events, tools, tests).</summary>
public static class StreamReadingExtensions
{
    /// <summary>
    /// Subscribes from <paramref name="from"/> (or from now) and yields events in order through a buffer of
    /// <paramref name="capacity"/> events. A reader that falls behind is not dropped and loses nothing: when the
    /// buffer is full, delivery to this subscription waits (the events stay in the provider). Ending the
    /// enumeration unsubscribes. Not for grains: a grain's subscription outlives its activations; use SubscribeAsync there.
    /// </summary>
    public static async IAsyncEnumerable<StreamEvent<T>> ReadEventsAsync<T>(
        this IAsyncStream<T> stream,
        StreamSequenceToken? from = null,
        int capacity = 256,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var buffer = Channel.CreateBounded<StreamEvent<T>>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        var handle = await stream.SubscribeAsync(
            new DelegateAsyncObserver<T>((e, token) => buffer.Writer.WriteAsync(e, token).AsTask()), from, cancellationToken);
        try
        {
            await foreach (var streamEvent in buffer.Reader.ReadAllAsync(cancellationToken))
            {
                yield return streamEvent;
            }
        }
        finally
        {
            await handle.UnsubscribeAsync(CancellationToken.None);
        }
    }
}
