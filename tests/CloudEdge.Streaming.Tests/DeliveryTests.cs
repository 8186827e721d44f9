using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.TestingHost;

namespace CloudEdge.Streaming.Tests;

/// <summary>Delivery through Orleans' persistent streams on the PostgreSQL queue adapter: one silo, one database.</summary>
public sealed class DeliveryTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>, IAsyncLifetime
{
    private TestCluster cluster = null!;

    public async Task InitializeAsync() => cluster = await StreamingCluster.StartAsync(database.ConnectionString);

    public async Task DisposeAsync() => await cluster.DisposeAsync();

    [Fact]
    public async Task An_implicit_subscriber_gets_every_event_in_order_with_contiguous_stream_sequences()
    {
        var streamId = StreamId.Create(TestStreams.ImplicitNamespace, $"implicit-{Guid.NewGuid():N}");
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        for (var i = 1; i <= 40; i++)
        {
            await stream.OnNextAsync(new TestEvent("implicit", i));
        }

        var received = await WaitForAsync(streamId, 40);
        AssertInOrder(received, 40);
        Assert.All(received, r => Assert.Equal(nameof(ImplicitCollectorGrain), r.Subscriber));
        Assert.Equal(40, received.Select(r => r.EventId).Distinct().Count());
    }

    [Fact]
    public async Task An_explicit_subscriber_gets_every_event_in_order_including_batches()
    {
        var streamId = StreamId.Create($"explicit-{Guid.NewGuid():N}", "s1");
        await cluster.GrainFactory.GetGrain<IExplicitCollectorGrain>(ExplicitCollectorGrain.KeyFor(streamId)).SubscribeAsync(streamId.GetNamespace()!, streamId.GetKeyAsString(), batches: false);
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);

        // Single events and OnNextBatchAsync (one transaction each) interleaved: one order, no gap.
        var number = 0;
        for (var round = 0; round < 5; round++)
        {
            await stream.OnNextAsync(new TestEvent("single", ++number));
            await stream.OnNextBatchAsync(Enumerable.Range(0, 7).Select(_ => new TestEvent("batch", ++number)).ToList());
        }

        var received = await WaitForAsync(streamId, number);
        AssertInOrder(received, number);
    }

    [Fact]
    public async Task A_batch_observer_gets_a_published_batch_in_order()
    {
        var streamId = StreamId.Create($"batches-{Guid.NewGuid():N}", "s1");
        await cluster.GrainFactory.GetGrain<IExplicitCollectorGrain>(ExplicitCollectorGrain.KeyFor(streamId)).SubscribeAsync(streamId.GetNamespace()!, streamId.GetKeyAsString(), batches: true);
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        await stream.OnNextBatchAsync(Enumerable.Range(1, 25).Select(i => new TestEvent("batch", i)).ToList());
        await stream.OnNextBatchAsync(Enumerable.Range(26, 25).Select(i => new TestEvent("batch", i)).ToList());

        AssertInOrder(await WaitForAsync(streamId, 50), 50);
    }

    [Fact]
    public async Task A_grain_publishing_from_a_traced_call_puts_its_trace_context_in_the_token_and_the_delivery()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "CloudEdge.Streaming.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource("CloudEdge.Streaming.Tests");

        var streamId = StreamId.Create(TestStreams.ImplicitNamespace, $"traced-{Guid.NewGuid():N}");
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        string expected;
        using (var activity = source.StartActivity("publish")!)
        {
            activity.TraceStateString = "cloudedge=1";
            expected = activity.Id!;
            await stream.OnNextAsync(new TestEvent("traced", 1));
        }

        var received = Assert.Single(await WaitForAsync(streamId, 1));
        Assert.Equal(expected, received.TraceParent);
        Assert.Equal("cloudedge=1", received.TraceState);

        // The container's RequestContext carries it into the consumer's turn, where Orleans' activity
        // propagation reads it.
        Assert.Equal(expected, received.ContextTraceParent);
    }

    [Fact]
    public async Task A_subscriber_in_the_silo_process_outside_any_grain_gets_the_envelope()
    {
        // What the Silo's SSE endpoints do: the silo's own IClusterClient, no grain.
        var services = StreamingCluster.ServicesOf(cluster);
        var client = services.GetRequiredService<IClusterClient>();
        var streamId = StreamId.Create($"sse-{Guid.NewGuid():N}", "device-1");
        var stream = client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        var received = new ConcurrentQueue<Received>();
        var handle = await stream.SubscribeAsync((item, token) =>
        {
            received.Enqueue(Deliveries.From("sse", streamId, item, token));
            return Task.CompletedTask;
        });

        try
        {
            var parent = ActivityTraceId.CreateRandom();
            var traceParent = $"00-{parent}-{ActivitySpanId.CreateRandom()}-01";
            RequestContext.Set("traceparent", traceParent);
            try
            {
                for (var i = 1; i <= 10; i++)
                {
                    await stream.OnNextAsync(new TestEvent("sse", i));
                }
            }
            finally
            {
                RequestContext.Clear();
            }

            await Wait.UntilAsync(() => received.Count >= 10, "10 events at the in-silo subscriber");
            var events = received.ToArray();
            AssertInOrder(events, 10);
            Assert.All(events, e => Assert.Equal(traceParent, e.TraceParent));
            Assert.All(events, e => Assert.NotEqual(Guid.Empty, e.EventId));

            // The log holds the same envelope: what SSE replays equals what it streamed live.
            var logged = await StreamingCluster.LogOf(services).ReadAsync<TestEvent>(streamId, 0, 100, CancellationToken.None);
            Assert.Equal(events.Select(e => (e.StreamSequence, e.EventId, e.Item)), logged.Select(e => (e.Sequence, e.EventId, e.Item)));
        }
        finally
        {
            await handle.UnsubscribeAsync();
        }
    }

    [Fact]
    public async Task Publishing_a_null_item_or_with_a_token_is_refused_and_stores_nothing()
    {
        var streamId = StreamId.Create($"refused-{Guid.NewGuid():N}", "s1");
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);

        var nullItem = await Assert.ThrowsAsync<ArgumentException>(() => stream.OnNextBatchAsync([new TestEvent("ok", 1), null!]));
        Assert.Contains("cannot be null", nullItem.Message);
        var withToken = await Assert.ThrowsAsync<ArgumentException>(() => stream.OnNextAsync(new TestEvent("ok", 1), new PostgresStreamSequenceToken(1, 1, Guid.NewGuid(), DateTimeOffset.UtcNow, null, null)));
        Assert.Contains("assigns sequence numbers itself", withToken.Message);

        var log = StreamingCluster.LogOf(cluster.Client.ServiceProvider);
        Assert.Equal(0, await log.GetLastSequenceAsync(streamId, CancellationToken.None));
    }

    private static async Task<IReadOnlyList<Received>> WaitForAsync(StreamId streamId, int count)
    {
        var sink = TestStreams.SinkOf(streamId);
        await Wait.UntilAsync(() => Deliveries.Of(sink).Count >= count, $"{count} deliveries on {sink}");
        return Deliveries.Of(sink);
    }

    /// <summary>Exactly 1..count, in order: stream sequence = position = the published number.</summary>
    internal static void AssertInOrder(IReadOnlyList<Received> received, int count)
    {
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), received.Select(r => r.StreamSequence));
        Assert.Equal(Enumerable.Range(1, count), received.Select(r => r.Item.Number));
        Assert.True(received.Zip(received.Skip(1)).All(pair => pair.First.QueueSequence < pair.Second.QueueSequence), "queue sequence increases");
    }
}
