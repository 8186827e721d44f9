using Orleans.Runtime;

namespace CloudEdge.Streaming.Tests;

/// <summary>Retention by count and by age, run by the queues' receivers on the provider's (fake) clock.</summary>
public sealed class RetentionTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>
{
    [Fact]
    public async Task Retention_keeps_the_last_events_of_each_stream_then_deletes_by_age_and_never_reuses_a_sequence()
    {
        var (clockId, clock) = TestClocks.Create();
        var settings = new StreamSettings
        {
            RetentionMaxEventsPerStream = 5,
            RetentionMaxAge = TimeSpan.FromHours(1),
            RetentionPeriod = TimeSpan.FromMinutes(1),
            ClockId = clockId,
        };
        await using var cluster = await StreamingCluster.StartAsync(database.ConnectionString, settings: settings);
        var log = StreamingCluster.LogOf(StreamingCluster.ServicesOf(cluster));
        var provider = cluster.Client.GetStreamProvider(TestStreams.Provider);
        var busy = StreamId.Create("retention", $"busy-{Guid.NewGuid():N}");
        var quiet = StreamId.Create("retention", $"quiet-{Guid.NewGuid():N}");

        await provider.GetStream<TestEvent>(busy).OnNextBatchAsync(Enumerable.Range(1, 12).Select(i => new TestEvent("busy", i)).ToList());
        await provider.GetStream<TestEvent>(quiet).OnNextBatchAsync(Enumerable.Range(1, 3).Select(i => new TestEvent("quiet", i)).ToList());
        await Wait.UntilAsync(() => StreamingCluster.AllDeliveredAsync(database.ConnectionString), "the events delivered (no subscriber: at once)");

        // By count: the next retention run (due once the clock passes the period) keeps the last 5 of "busy".
        clock.Advance(TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(async () => (await log.ReadAsync<TestEvent>(busy, 0, 100, CancellationToken.None)).Count == 5, "busy trimmed to 5 events");
        Assert.Equal([8L, 9L, 10L, 11L, 12L], (await log.ReadAsync<TestEvent>(busy, 0, 100, CancellationToken.None)).Select(e => e.Sequence));
        Assert.Equal(3, (await log.ReadAsync<TestEvent>(quiet, 0, 100, CancellationToken.None)).Count);

        // By age: two hours on, a new event on "quiet"; the next run deletes everything older than an hour.
        clock.Advance(TimeSpan.FromHours(2));
        await provider.GetStream<TestEvent>(quiet).OnNextAsync(new TestEvent("quiet", 4));
        await Wait.UntilAsync(() => StreamingCluster.AllDeliveredAsync(database.ConnectionString), "the new event delivered");
        clock.Advance(TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(async () => (await log.ReadAsync<TestEvent>(busy, 0, 100, CancellationToken.None)).Count == 0, "busy emptied by age");
        await Wait.UntilAsync(async () => (await log.ReadAsync<TestEvent>(quiet, 0, 100, CancellationToken.None)).Count == 1, "quiet down to its new event");
        Assert.Equal(4, Assert.Single(await log.ReadAsync<TestEvent>(quiet, 0, 100, CancellationToken.None)).Sequence);

        // The heads stay: numbering continues where it was.
        Assert.Equal(12, await log.GetLastSequenceAsync(busy, CancellationToken.None));
        await provider.GetStream<TestEvent>(busy).OnNextAsync(new TestEvent("busy", 13));
        Assert.Equal(13, Assert.Single(await log.ReadAsync<TestEvent>(busy, 0, 100, CancellationToken.None)).Sequence);
    }
}
