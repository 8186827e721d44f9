using CloudEdge.Silo.Live;

namespace CloudEdge.Silo.Tests;

public sealed class SseFrameCacheTests
{
    [Fact]
    public void An_event_is_serialized_once_per_stream_and_sequence_and_the_oldest_leave_first()
    {
        var cache = new SseFrameCache(capacity: 2);
        var serialized = new List<string>();
        string Serialize(string text)
        {
            serialized.Add(text);
            return text;
        }

        Assert.Equal("a1", cache.GetOrAdd("device/a", 1, Serialize, "a1"));
        Assert.Equal("a1", cache.GetOrAdd("device/a", 1, Serialize, "ignored: cached"));
        Assert.Equal("b1", cache.GetOrAdd("device/b", 1, Serialize, "b1"));
        Assert.Equal(["a1", "b1"], serialized);

        // A third entry evicts the oldest: device/a 1 is serialized again, device/b 1 still comes from the cache.
        Assert.Equal("a2", cache.GetOrAdd("device/a", 2, Serialize, "a2"));
        Assert.Equal("a1 again", cache.GetOrAdd("device/a", 1, Serialize, "a1 again"));
        Assert.Equal(["a1", "b1", "a2", "a1 again"], serialized);
    }
}
