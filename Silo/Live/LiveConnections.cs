using System.Collections.Concurrent;

namespace CloudEdge.Silo.Live;

/// <summary>Counts each caller's open live connections, so that one caller cannot hold an unbounded number.</summary>
internal sealed class LiveConnections
{
    private readonly ConcurrentDictionary<string, int> open = new(StringComparer.Ordinal);

    /// <summary>A lease to hold while the connection is open, or null when the caller is at <paramref name="limit"/>.</summary>
    public Lease? TryOpen(string caller, int limit)
    {
        while (true)
        {
            var current = open.GetOrAdd(caller, 0);
            if (current >= limit)
            {
                return null;
            }

            if (open.TryUpdate(caller, current + 1, current))
            {
                return new Lease(this, caller);
            }
        }
    }

    private void Release(string caller)
    {
        while (true)
        {
            var current = open[caller];
            if (current <= 1 ? open.TryRemove(new KeyValuePair<string, int>(caller, current)) : open.TryUpdate(caller, current - 1, current))
            {
                return;
            }
        }
    }

    internal sealed class Lease(LiveConnections owner, string caller) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                owner.Release(caller);
            }
        }
    }
}
