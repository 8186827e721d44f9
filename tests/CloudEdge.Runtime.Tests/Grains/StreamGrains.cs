using System.Collections.Concurrent;
using System.Diagnostics;

namespace CloudEdge.Runtime.Tests.Grains;

public sealed record SensorReading(string Sensor, int Value);

/// <summary>One delivery as a consumer saw it.</summary>
public sealed record StreamDelivery(long Sequence, int Value, Guid EventId, string? TraceId, string? TraceParent);

/// <summary>What stream consumers received, by consumer key (grains are created by the runtime, so tests find them by key).</summary>
public static class StreamDeliveries
{
    private static readonly ConcurrentDictionary<string, ConcurrentQueue<StreamDelivery>> Received = new();

    public static ConcurrentQueue<StreamDelivery> For(string key) => Received.GetOrAdd(key, _ => new ConcurrentQueue<StreamDelivery>());

    public static void Record(string key, StreamEvent<SensorReading> e) =>
        For(key).Enqueue(new StreamDelivery(e.Token.SequenceNumber, e.Item.Value, e.EventId, Activity.Current?.TraceId.ToString(), e.TraceParent));
}

public interface IStreamConsumerGrain : IGrainWithStringKey
{
    Task<Guid> Subscribe(string provider, string streamNamespace, string streamKey);

    Task<int> SubscriptionCount(string provider, string streamNamespace, string streamKey);

    Task Deactivate();
}

/// <summary>
/// Subscribes explicitly, with itself as the observer: after a deactivation or restart, delivery activates it
/// and the runtime hands events to the grain itself. A negative value is poison: it always fails.
/// </summary>
public sealed class StreamConsumerGrain : Grain, IStreamConsumerGrain, IAsyncObserver<SensorReading>
{
    public async Task<Guid> Subscribe(string provider, string streamNamespace, string streamKey)
    {
        var handle = await this.GetStreamProvider(provider).GetStream<SensorReading>(StreamId.Create(streamNamespace, streamKey)).SubscribeAsync(this);
        return handle.HandleId;
    }

    public async Task<int> SubscriptionCount(string provider, string streamNamespace, string streamKey) =>
        (await this.GetStreamProvider(provider).GetStream<SensorReading>(StreamId.Create(streamNamespace, streamKey)).GetAllSubscriptionHandles()).Count;

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    /// <summary>A negative value always fails; 1000 is slow (4 s), for delivery timeouts.</summary>
    public async Task OnNextAsync(StreamEvent<SensorReading> streamEvent, CancellationToken cancellationToken)
    {
        if (streamEvent.Item.Value < 0)
        {
            throw new InvalidOperationException($"poison reading {streamEvent.Item.Value}");
        }

        if (streamEvent.Item.Value == 1000)
        {
            await Task.Delay(TimeSpan.FromSeconds(4), CancellationToken.None);
        }

        StreamDeliveries.Record(this.GetPrimaryKeyString(), streamEvent);
    }
}

/// <summary>Resumes its stored subscriptions with a delegate observer in OnActivateAsync (the Orleans pattern).</summary>
public sealed class ResumingConsumerGrain : Grain, IStreamConsumerGrain
{
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var stream = this.GetStreamProvider("durable").GetStream<SensorReading>(StreamId.Create("resume", key));
        foreach (var handle in await stream.GetAllSubscriptionHandles(cancellationToken))
        {
            await handle.ResumeAsync(e =>
            {
                StreamDeliveries.Record("resumed:" + key, e);
                return Task.CompletedTask;
            });
        }
    }

    public async Task<Guid> Subscribe(string provider, string streamNamespace, string streamKey)
    {
        var key = this.GetPrimaryKeyString();
        var handle = await this.GetStreamProvider(provider).GetStream<SensorReading>(StreamId.Create(streamNamespace, streamKey)).SubscribeAsync(e =>
        {
            StreamDeliveries.Record("first:" + key, e);
            return Task.CompletedTask;
        });
        return handle.HandleId;
    }

    public async Task<int> SubscriptionCount(string provider, string streamNamespace, string streamKey) =>
        (await this.GetStreamProvider(provider).GetStream<SensorReading>(StreamId.Create(streamNamespace, streamKey)).GetAllSubscriptionHandles()).Count;

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}

public interface ITelemetryGrain : IGrainWithStringKey
{
    Task<int> Processed();
}

/// <summary>Implicitly subscribed to every "telemetry" stream: the stream key is the grain key. Drops redeliveries with the dedupe helper.</summary>
[ImplicitStreamSubscription("telemetry")]
public sealed class TelemetryGrain : Grain, ITelemetryGrain, IAsyncObserver<SensorReading>
{
    private readonly StreamEventDeduplicator seen = new(1000);
    private int processed;

    public Task<int> Processed() => Task.FromResult(processed);

    public Task OnNextAsync(StreamEvent<SensorReading> streamEvent, CancellationToken cancellationToken)
    {
        if (seen.TryMarkSeen(streamEvent))
        {
            processed++;
            StreamDeliveries.Record("telemetry:" + this.GetPrimaryKeyString(), streamEvent);
        }

        return Task.CompletedTask;
    }
}
