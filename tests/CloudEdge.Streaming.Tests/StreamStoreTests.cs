using System.Collections.Concurrent;
using Orleans.Runtime;

namespace CloudEdge.Streaming.Tests;

/// <summary>The SQL of the queue table / event log, on a real PostgreSQL, under concurrency.</summary>
public sealed class StreamStoreTests(StreamingDatabase database) : IClassFixture<StreamingDatabase>
{
    [Fact]
    public async Task Concurrent_appends_get_gap_free_queue_and_stream_sequences_and_a_reader_never_skips_a_late_commit()
    {
        await using var store = new PostgresStreamStore($"concurrent-{Guid.NewGuid():N}", database.ConnectionString);
        var streams = Enumerable.Range(0, 4).Select(i => StreamId.Create("store", $"s{i}")).ToArray();
        const int appendsPerWriter = 40;
        const int writers = 8;

        // A reader like a receiver: always after the last position it saw; each read must begin right there.
        var seen = new ConcurrentQueue<StoredStreamEvent>();
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            long position = 0;
            while (true)
            {
                var events = await store.ReadQueueAsync(0, position, 50, CancellationToken.None);
                foreach (var e in events)
                {
                    Assert.Equal(position + 1, e.QueueSequence);
                    position = e.QueueSequence;
                    seen.Enqueue(e);
                }

                if (events.Count == 0 && stop.IsCancellationRequested)
                {
                    return;
                }
            }
        });

        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < appendsPerWriter; i++)
            {
                var batch = Enumerable.Range(0, 1 + (i % 3)).Select(_ => new NewStreamEvent(Guid.NewGuid(), "test", [(byte)w])).ToList();
                await store.AppendAsync(0, streams[(w + i) % streams.Length], batch, DateTimeOffset.UtcNow, null, null, null, notify: true, CancellationToken.None);
            }
        })));
        await stop.CancelAsync();
        await reader;

        var total = Enumerable.Range(0, appendsPerWriter).Sum(i => 1 + (i % 3)) * writers;
        var all = seen.ToArray();
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), all.Select(e => e.QueueSequence));
        foreach (var stream in streams)
        {
            var ofStream = all.Where(e => e.StreamId == stream).ToArray();
            Assert.Equal(Enumerable.Range(1, ofStream.Length).Select(i => (long)i), ofStream.Select(e => e.StreamSequence));
            Assert.Equal(ofStream.Length, await store.GetLastSequenceAsync(stream, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Retention_never_deletes_beyond_the_checkpoint_and_checkpoints_never_move_back()
    {
        await using var store = new PostgresStreamStore($"retention-{Guid.NewGuid():N}", database.ConnectionString);
        var stream = StreamId.Create("store", "old");
        var longAgo = DateTimeOffset.UtcNow.AddDays(-30);
        await store.AppendAsync(1, stream, Enumerable.Range(0, 10).Select(_ => new NewStreamEvent(Guid.NewGuid(), "test", [1])).ToList(), longAgo, null, null, null, notify: false, CancellationToken.None);

        // Nothing delivered: nothing goes, however old or many.
        Assert.Equal(0, await store.DeleteOlderThanAsync(1, checkpoint: 0, DateTimeOffset.UtcNow, CancellationToken.None));
        Assert.Equal(0, await store.DeleteBeyondCountAsync(1, checkpoint: 0, maxPerStream: 1, CancellationToken.None));

        // Delivered up to 4: by count (keep 2) only events 1..4 may go; by age the rest waits for the checkpoint too.
        await store.SaveCheckpointAsync(1, 4, DateTimeOffset.UtcNow, CancellationToken.None);
        await store.SaveCheckpointAsync(1, 2, DateTimeOffset.UtcNow, CancellationToken.None);
        Assert.Equal(4, await store.LoadCheckpointAsync(1, CancellationToken.None));
        Assert.Equal(4, await store.DeleteBeyondCountAsync(1, checkpoint: 4, maxPerStream: 2, CancellationToken.None));
        Assert.Equal(0, await store.DeleteOlderThanAsync(1, checkpoint: 4, DateTimeOffset.UtcNow, CancellationToken.None));
        Assert.Equal(6, await store.DeleteOlderThanAsync(1, checkpoint: 10, DateTimeOffset.UtcNow, CancellationToken.None));
        Assert.Empty(await store.ReadStreamAsync(stream, 0, 100, CancellationToken.None));
        Assert.Equal(10, await store.GetLastSequenceAsync(stream, CancellationToken.None));
    }
}
