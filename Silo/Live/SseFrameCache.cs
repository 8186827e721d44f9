using System.Collections.Concurrent;

namespace CloudEdge.Silo.Live;

/// <summary>
/// The JSON data of recent events, by stream and sequence number: an event is serialized once however
/// many clients follow its stream (a fleet alert with 500 dashboards open was serialized 500 times).
/// Bounded: the oldest entries leave first, and an evicted event is simply serialized again.
/// </summary>
internal sealed class SseFrameCache(int capacity = 4096)
{
    private readonly ConcurrentDictionary<(string Stream, long Seq), string> data = new();
    private readonly ConcurrentQueue<(string Stream, long Seq)> order = new();

    public string GetOrAdd<TState>(string stream, long seq, Func<TState, string> serialize, TState state)
    {
        var key = (stream, seq);
        if (data.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var json = serialize(state);
        if (data.TryAdd(key, json))
        {
            order.Enqueue(key);
            while (order.Count > capacity && order.TryDequeue(out var oldest))
            {
                data.TryRemove(oldest, out _);
            }
        }

        return json;
    }
}
