using Orleans.Runtime;

namespace CloudEdge.Streaming.Tests;

/// <summary>Without NOTIFY the receivers find events by polling alone.</summary>
public sealed class PollingTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>
{
    [Fact]
    public async Task With_notifications_off_polling_alone_delivers_every_event_in_order()
    {
        await using var cluster = await StreamingCluster.StartAsync(database.ConnectionString, settings: new StreamSettings { UseNotifications = false, QueueCount = 2 });
        var streamId = StreamId.Create(TestStreams.ImplicitNamespace, $"polling-{Guid.NewGuid():N}");
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        await stream.OnNextBatchAsync(Enumerable.Range(1, 10).Select(i => new TestEvent("polled", i)).ToList());
        for (var i = 11; i <= 20; i++)
        {
            await stream.OnNextAsync(new TestEvent("polled", i));
        }

        var sink = TestStreams.SinkOf(streamId);
        await Wait.UntilAsync(() => Deliveries.Of(sink).Count >= 20, "20 deliveries by polling");
        DeliveryTests.AssertInOrder(Deliveries.Of(sink), 20);
    }
}
