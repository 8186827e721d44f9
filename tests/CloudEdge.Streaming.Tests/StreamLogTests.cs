using Orleans.Runtime;

namespace CloudEdge.Streaming.Tests;

/// <summary>IStreamLog: what the SSE endpoints read for Last-Event-ID and ?replay=N, across a full cluster restart.</summary>
public sealed class StreamLogTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>
{
    [Fact]
    public async Task The_log_reads_from_a_sequence_and_knows_the_last_one()
    {
        await using var cluster = await StreamingCluster.StartAsync(database.ConnectionString);
        var streamId = StreamId.Create("log", $"s-{Guid.NewGuid():N}");
        var log = StreamingCluster.LogOf(StreamingCluster.ServicesOf(cluster));
        Assert.Equal(0, await log.GetLastSequenceAsync(streamId, CancellationToken.None));
        Assert.Empty(await log.ReadAsync<TestEvent>(streamId, 0, 10, CancellationToken.None));

        var stream = cluster.Client.GetStreamProvider(TestStreams.Provider).GetStream<TestEvent>(streamId);
        await stream.OnNextBatchAsync(Enumerable.Range(1, 12).Select(i => new TestEvent("log", i)).ToList());

        // Durable when OnNext returns: readable at once, from any process sharing the database.
        Assert.Equal(12, await log.GetLastSequenceAsync(streamId, CancellationToken.None));
        var tail = await log.ReadAsync<TestEvent>(streamId, 9, 10, CancellationToken.None);
        Assert.Equal([10L, 11L, 12L], tail.Select(e => e.Sequence));
        Assert.Equal([10, 11, 12], tail.Select(e => e.Item.Number));
        Assert.All(tail, e => Assert.Equal(streamId, e.StreamId));

        var page = await log.ReadAsync<TestEvent>(streamId, 0, 5, CancellationToken.None);
        Assert.Equal([1L, 2L, 3L, 4L, 5L], page.Select(e => e.Sequence));
        Assert.Empty(await log.ReadAsync<TestEvent>(streamId, 12, 10, CancellationToken.None));

        // Another item type on the stream is left out of a typed read.
        Assert.Empty(await log.ReadAsync<string>(streamId, 0, 10, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.ReadAsync<TestEvent>(streamId, -1, 10, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.ReadAsync<TestEvent>(streamId, 0, 0, CancellationToken.None));
    }

    [Fact]
    public async Task After_a_full_cluster_restart_sequences_continue_history_stays_and_delivery_resumes_after_the_checkpoint()
    {
        var serviceId = Guid.NewGuid().ToString("N");
        var logged = StreamId.Create("log", $"restart-{Guid.NewGuid():N}");
        var delivered = StreamId.Create(TestStreams.ImplicitNamespace, $"restart-{Guid.NewGuid():N}");
        var sink = TestStreams.SinkOf(delivered);
        IReadOnlyList<LoggedEvent<TestEvent>> before;

        await using (var first = await StreamingCluster.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            var provider = first.Client.GetStreamProvider(TestStreams.Provider);
            await provider.GetStream<TestEvent>(logged).OnNextBatchAsync(Enumerable.Range(1, 5).Select(i => new TestEvent("before", i)).ToList());
            for (var i = 1; i <= 5; i++)
            {
                await provider.GetStream<TestEvent>(delivered).OnNextAsync(new TestEvent("before", i));
            }

            await Wait.UntilAsync(() => Deliveries.Of(sink).Count >= 5, "5 deliveries before the restart");
            await Wait.UntilAsync(() => StreamingCluster.AllDeliveredAsync(database.ConnectionString), "every queue checkpointed");
            before = await StreamingCluster.LogOf(first.Client.ServiceProvider).ReadAsync<TestEvent>(logged, 0, 100, CancellationToken.None);
            await first.StopAllSilosAsync();
        }

        await using var second = await StreamingCluster.StartAsync(database.ConnectionString, serviceId: serviceId);
        var log = StreamingCluster.LogOf(StreamingCluster.ServicesOf(second));
        Assert.Equal(5, await log.GetLastSequenceAsync(logged, CancellationToken.None));

        var again = second.Client.GetStreamProvider(TestStreams.Provider);
        await again.GetStream<TestEvent>(logged).OnNextBatchAsync(Enumerable.Range(6, 3).Select(i => new TestEvent("after", i)).ToList());
        for (var i = 6; i <= 8; i++)
        {
            await again.GetStream<TestEvent>(delivered).OnNextAsync(new TestEvent("after", i));
        }

        var all = await log.ReadAsync<TestEvent>(logged, 0, 100, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), all.Select(e => e.Sequence));
        Assert.Equal(before.Select(e => (e.Sequence, e.EventId, e.Timestamp, e.Item)), all.Take(5).Select(e => (e.Sequence, e.EventId, e.Timestamp, e.Item)));
        Assert.Equal(8, all.Select(e => e.EventId).Distinct().Count());

        // The new silo's receivers started at the checkpoints: 6..8 arrive, 1..5 are not delivered again.
        await Wait.UntilAsync(() => Deliveries.Of(sink).Count >= 8, "3 deliveries after the restart");
        await Wait.UntilAsync(() => StreamingCluster.AllDeliveredAsync(database.ConnectionString), "every queue checkpointed again");
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), Deliveries.Of(sink).Select(r => r.StreamSequence));
    }
}
