namespace CloudEdge.Runtime;

/// <summary>A named stream provider (durable SQLite, in-memory...). Non-grain code gets one as a keyed service or from <see cref="IStreamProviderFactory"/>.</summary>
public interface IStreamProvider
{
    string Name { get; }

    /// <summary>Whether events are kept after delivery, so that subscribers can rewind to a token.</summary>
    bool IsRewindable { get; }

    IAsyncStream<T> GetStream<T>(StreamId streamId);

    /// <summary>Events that could not be delivered after the configured attempts, oldest first.</summary>
    Task<IReadOnlyList<StreamDeadLetter>> GetDeadLettersAsync(StreamId? streamId = null, int limit = 100, CancellationToken cancellationToken = default);
}

/// <summary>Finds stream providers by name (a DI singleton).</summary>
public interface IStreamProviderFactory
{
    /// <summary>The provider registered as <paramref name="name"/>; throws a clear error if there is none.</summary>
    IStreamProvider GetStreamProvider(string name);
}

/// <summary>An event a subscriber failed to handle in every attempt.</summary>
public sealed record StreamDeadLetter(
    StreamId StreamId,
    Guid EventId,
    StreamSequenceToken Token,
    Guid SubscriptionId,
    string Subscriber,
    int Attempts,
    string Error,
    DateTimeOffset DeadLetteredAt,
    string Payload);

/// <summary>Marks a grain class as subscribed to every stream of a namespace: an event on stream (ns, key) activates the grain with that key.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ImplicitStreamSubscriptionAttribute(string streamNamespace) : Attribute
{
    public string Namespace { get; } = streamNamespace;
}

/// <summary>Stream access from grain code.</summary>
public static class GrainStreamExtensions
{
    /// <summary>The silo's stream provider named <paramref name="name"/>.</summary>
    public static IStreamProvider GetStreamProvider(this Grain grain, string name)
    {
        ArgumentNullException.ThrowIfNull(grain);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var factory = grain.GrainContext.ActivationServices.GetService(typeof(IStreamProviderFactory)) as IStreamProviderFactory
            ?? throw new InvalidOperationException("No stream provider is configured for this silo: add one with silo.AddSqliteStreams(name) or silo.AddMemoryStreams(name).");
        return factory.GetStreamProvider(name);
    }
}
