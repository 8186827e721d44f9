namespace CloudEdge.Runtime.Streams;

/// <summary>Where a stream ends, for readers that start a given number of events back (a Server-Sent Events replay).</summary>
public static class StreamHeads
{
    /// <summary>
    /// The token of the last event ever appended to <paramref name="streamId"/> (retained or trimmed), or
    /// null when nothing was published to it. Only for providers registered with this runtime.
    /// </summary>
    public static async Task<StreamSequenceToken?> GetLastTokenAsync(this IStreamProvider provider, StreamId streamId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(provider);
        if (provider is not StreamProvider own)
        {
            throw new ArgumentException($"Stream provider '{provider.Name}' is not one of this runtime's providers.", nameof(provider));
        }

        var last = await own.Store.GetLastSequenceAsync(streamId, cancellationToken);
        return last == 0 ? null : new StreamSequenceToken(last);
    }
}
