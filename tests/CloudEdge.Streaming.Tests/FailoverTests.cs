using Orleans.Runtime;

namespace CloudEdge.Streaming.Tests;

/// <summary>Two silos share the queues; one dies abruptly while events are published.</summary>
public sealed class FailoverTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>
{
    [Fact]
    public async Task When_a_silo_is_killed_while_publishing_every_event_still_reaches_its_grain_subscriber()
    {
        await using var cluster = await StreamingCluster.StartAsync(database.ConnectionString, silos: 2);
        var streams = Enumerable.Range(0, 16)
            .Select(i => StreamId.Create(TestStreams.ImplicitNamespace, $"failover-{i}-{Guid.NewGuid():N}"))
            .ToArray();
        var provider = cluster.Client.GetStreamProvider(TestStreams.Provider);
        var published = new int[streams.Length];

        async Task PublishRoundAsync(int round)
        {
            for (var s = 0; s < streams.Length; s++)
            {
                await provider.GetStream<TestEvent>(streams[s]).OnNextAsync(new TestEvent("failover", round));
                published[s] = round;
            }
        }

        for (var round = 1; round <= 10; round++)
        {
            await PublishRoundAsync(round);
        }

        // Both silos deliver (the 16 streams hash onto queues that both own) before one dies.
        await Wait.UntilAsync(() => streams.All(s => Deliveries.Of(TestStreams.SinkOf(s)).Count >= 10), "the first rounds delivered");
        var victim = cluster.Silos[1];
        var publishing = Task.Run(async () =>
        {
            for (var round = 11; round <= 60; round++)
            {
                await PublishRoundAsync(round);
            }
        });
        await Wait.UntilAsync(() => published.Min() >= 20, "publishing under way");
        await cluster.KillSiloAsync(victim);
        await publishing;

        // At-least-once: the survivor takes the dead silo's queues over from their checkpoints.
        foreach (var stream in streams)
        {
            var sink = TestStreams.SinkOf(stream);
            await Wait.UntilAsync(
                () => Deliveries.Of(sink).Select(r => r.StreamSequence).Distinct().Count() >= 60,
                $"all 60 events of {sink} delivered",
                TimeSpan.FromMinutes(3));
            var sequences = Deliveries.Of(sink).Select(r => r.StreamSequence).Distinct().Order().ToArray();
            Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), sequences);
            Assert.All(Deliveries.Of(sink), r => Assert.Equal(r.StreamSequence, (long)r.Item.Number));
        }
    }
}
