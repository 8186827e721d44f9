namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>
/// The bound on how fast the outbox drains (<see cref="UplinkOptions.MaxItemsPerSecond"/>), as a token bucket:
/// the budget refills at the rate up to one batch, every sent item spends one, and a sender that has overspent
/// waits until the budget is back at zero. A backlog after an outage therefore leaves at the rate (after one
/// batch of burst), while a sender that has been quiet owes nothing: the alert that follows a window's burst of
/// summaries is not held back by a wait sized for a backlog.
/// </summary>
internal sealed class DrainBudget
{
    private readonly double _itemsPerSecond;
    private readonly double _burst;
    private readonly TimeProvider _time;
    private double _items;
    private long _updatedAt;

    public DrainBudget(int itemsPerSecond, int burst, TimeProvider time)
    {
        _itemsPerSecond = Math.Max(1, itemsPerSecond);
        _burst = Math.Max(1, burst);
        _time = time;
        _items = _burst;
        _updatedAt = time.GetTimestamp();
    }

    /// <summary>Spends <paramref name="count"/> sent items; returns how long to wait before the next request.</summary>
    public TimeSpan Spend(int count)
    {
        var now = _time.GetTimestamp();
        _items = Math.Min(_burst, _items + (_time.GetElapsedTime(_updatedAt, now).TotalSeconds * _itemsPerSecond)) - count;
        _updatedAt = now;
        return _items >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_items / _itemsPerSecond);
    }
}
