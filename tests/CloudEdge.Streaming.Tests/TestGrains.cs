using System.Collections.Concurrent;
using Orleans.Runtime;
using Orleans.Streams;

namespace CloudEdge.Streaming.Tests;

[GenerateSerializer]
[Alias("CloudEdge.Streaming.Tests.TestEvent")]
[Immutable]
public sealed record TestEvent([property: Id(0)] string Text, [property: Id(1)] int Number);

/// <summary>What a subscriber received, with the token's envelope.</summary>
public sealed record Received(string Subscriber, StreamId StreamId, TestEvent Item, long StreamSequence, long QueueSequence, Guid EventId, DateTimeOffset Timestamp, string? TraceParent, string? TraceState, string? ContextTraceParent);

/// <summary>
/// Where test subscribers record deliveries. The test cluster's silos live in the test process, so a grain
/// on a silo that gets killed has already written here what it received.
/// </summary>
public static class Deliveries
{
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<Received>> BySink = new();

    public static void Record(string sink, Received received) => BySink.GetOrAdd(sink, _ => new()).Enqueue(received);

    public static IReadOnlyList<Received> Of(string sink) => BySink.TryGetValue(sink, out var queue) ? queue.ToArray() : [];

    public static Received From(string subscriber, StreamId streamId, TestEvent item, StreamSequenceToken? token)
    {
        var envelope = token as PostgresStreamSequenceToken
            ?? throw new InvalidOperationException($"Expected a PostgresStreamSequenceToken, got {token?.GetType().Name ?? "null"}.");
        return new Received(subscriber, streamId, item, envelope.StreamSequence, envelope.SequenceNumber, envelope.EventId, envelope.Timestamp,
            envelope.TraceParent, envelope.TraceState, RequestContext.Get("traceparent") as string);
    }
}

public static class TestStreams
{
    public const string Provider = "platform";
    public const string ImplicitNamespace = "implicit";

    /// <summary>Stream namespaces carry the test's sink name, so test classes sharing nothing see only their own deliveries.</summary>
    public static string SinkOf(StreamId streamId) => $"{streamId.GetNamespace()}/{streamId.GetKeyAsString()}";
}

public interface IImplicitCollectorGrain : IGrainWithStringKey
{
    Task PingAsync();
}

/// <summary>Implicitly subscribed to every stream of namespace "implicit" whose key is its own.</summary>
[ImplicitStreamSubscription(TestStreams.ImplicitNamespace)]
public sealed class ImplicitCollectorGrain : Grain, IImplicitCollectorGrain
{
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var streamId = StreamId.Create(TestStreams.ImplicitNamespace, this.GetPrimaryKeyString());
        var stream = this.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        await stream.SubscribeAsync((item, token) =>
        {
            Deliveries.Record(TestStreams.SinkOf(streamId), Deliveries.From(nameof(ImplicitCollectorGrain), streamId, item, token));
            return Task.CompletedTask;
        });
    }

    public Task PingAsync() => Task.CompletedTask;
}

public interface IExplicitCollectorGrain : IGrainWithStringKey
{
    Task SubscribeAsync(string streamNamespace, string streamKey, bool batches);
}

/// <summary>Subscribes on request (a durable subscription in pub-sub) and resumes its handles when re-activated.</summary>
public sealed class ExplicitCollectorGrain : Grain, IExplicitCollectorGrain, IAsyncObserver<TestEvent>, IAsyncBatchObserver<TestEvent>
{
    private StreamId streamId;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (streamNamespace, key) = Split(this.GetPrimaryKeyString());
        if (streamNamespace is null)
        {
            return;
        }

        streamId = StreamId.Create(streamNamespace, key);
        var stream = this.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        foreach (var handle in await stream.GetAllSubscriptionHandles())
        {
            await handle.ResumeAsync((IAsyncObserver<TestEvent>)this);
        }
    }

    public async Task SubscribeAsync(string streamNamespace, string streamKey, bool batches)
    {
        streamId = StreamId.Create(streamNamespace, streamKey);
        var stream = this.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        if (batches)
        {
            await stream.SubscribeAsync((IAsyncBatchObserver<TestEvent>)this);
        }
        else
        {
            await stream.SubscribeAsync((IAsyncObserver<TestEvent>)this);
        }
    }

    public Task OnNextAsync(TestEvent item, StreamSequenceToken? token = null)
    {
        Deliveries.Record(TestStreams.SinkOf(streamId), Deliveries.From(this.GetPrimaryKeyString(), streamId, item, token));
        return Task.CompletedTask;
    }

    public Task OnNextAsync(IList<SequentialItem<TestEvent>> items)
    {
        foreach (var item in items)
        {
            Deliveries.Record(TestStreams.SinkOf(streamId), Deliveries.From(this.GetPrimaryKeyString(), streamId, item.Item, item.Token));
        }

        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    /// <summary>Grain keys are "namespace|key" so that a re-activation knows its stream.</summary>
    public static string KeyFor(StreamId streamId) => $"{streamId.GetNamespace()}|{streamId.GetKeyAsString()}";

    private static (string? Namespace, string Key) Split(string grainKey)
    {
        var bar = grainKey.IndexOf('|', StringComparison.Ordinal);
        return bar < 0 ? (null, grainKey) : (grainKey[..bar], grainKey[(bar + 1)..]);
    }
}
