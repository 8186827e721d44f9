using CloudEdge.Testing.Postgres;
using Orleans.Runtime;
using Orleans.Streams;

namespace CloudEdge.Streaming.Tests;

/// <summary>PostgreSQL stopped under a running silo. A private instance: the shared one serves other classes meanwhile.</summary>
public sealed class DatabaseOutageTests
{
    [Fact]
    public async Task Publishing_while_the_database_is_down_fails_clearly_and_nothing_acknowledged_is_lost()
    {
        await using var server = await PostgresServer.CreateAsync();
        var connectionString = await server.CreateDatabaseAsync("outage");
        await using var cluster = await StreamingCluster.StartAsync(connectionString);
        var streamId = StreamId.Create(TestStreams.ImplicitNamespace, $"outage-{Guid.NewGuid():N}");
        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        var acknowledged = new List<int>();
        for (var i = 1; i <= 5; i++)
        {
            await stream.OnNextAsync(new TestEvent("before", i));
            acknowledged.Add(i);
        }

        await server.StopAsync();
        var refused = await Assert.ThrowsAsync<StreamPublishException>(() => stream.OnNextAsync(new TestEvent("down", 100)));
        Assert.Contains("could not store 1 event(s)", refused.Message);
        Assert.Contains("PostgreSQL is unavailable", refused.Message);
        await Assert.ThrowsAsync<StreamPublishException>(() => stream.OnNextBatchAsync([new TestEvent("down", 101), new TestEvent("down", 102)]));

        await server.StartAsync();
        var number = 5;
        await Wait.UntilAsync(async () => await TryPublishAsync(stream, new TestEvent("after", number + 1)), "a publish accepted after the restart");
        acknowledged.Add(++number);
        for (var i = 0; i < 4; i++)
        {
            await stream.OnNextAsync(new TestEvent("after", ++number));
            acknowledged.Add(number);
        }

        // Every acknowledged event is in the log, numbered without a gap, and reaches the subscriber.
        var log = StreamingCluster.LogOf(StreamingCluster.ServicesOf(cluster));
        var logged = await log.ReadAsync<TestEvent>(streamId, 0, 100, CancellationToken.None);
        Assert.Equal(acknowledged, logged.Select(e => e.Item.Number));
        Assert.Equal(Enumerable.Range(1, acknowledged.Count).Select(i => (long)i), logged.Select(e => e.Sequence));
        var sink = TestStreams.SinkOf(streamId);
        await Wait.UntilAsync(() => Deliveries.Of(sink).Select(r => r.StreamSequence).Distinct().Count() >= acknowledged.Count, "every acknowledged event delivered");
        Assert.Equal(acknowledged, Deliveries.Of(sink).DistinctBy(r => r.StreamSequence).Select(r => r.Item.Number));
    }

    private static async Task<bool> TryPublishAsync(IAsyncStream<TestEvent> stream, TestEvent item)
    {
        try
        {
            await stream.OnNextAsync(item);
            return true;
        }
        catch (StreamPublishException)
        {
            return false;
        }
    }
}
