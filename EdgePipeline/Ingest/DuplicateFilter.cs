namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>
/// Recognises a reading delivered twice (QoS 1 redelivery, a device re-publishing after a lost session): same
/// device, seq and ts. A device that restarts its seq from 1 sends new timestamps, so it is not mistaken for one.
/// Remembers the last <c>capacity</c> readings per device.
/// </summary>
internal sealed class DuplicateFilter(int capacity)
{
    private readonly Dictionary<string, (HashSet<(long, long)> Set, Queue<(long, long)> Order)> _devices = new(StringComparer.Ordinal);

    /// <summary>True when the reading is new (and remembers it).</summary>
    public bool TryAdd(SensorReading reading)
    {
        if (!_devices.TryGetValue(reading.DeviceId, out var seen))
        {
            seen = ([], new Queue<(long, long)>());
            _devices[reading.DeviceId] = seen;
        }
        var key = (reading.Seq, reading.Timestamp.UtcTicks);
        if (!seen.Set.Add(key)) return false;
        seen.Order.Enqueue(key);
        if (seen.Order.Count > capacity) seen.Set.Remove(seen.Order.Dequeue());
        return true;
    }

    /// <summary>Forgets a reading that was refused after all (its journal commit failed), so its resend is taken as new.</summary>
    public void Forget(SensorReading reading)
    {
        // Its slot in the order queue stays; when it comes round it removes nothing, or a later copy a little early.
        if (_devices.TryGetValue(reading.DeviceId, out var seen)) seen.Set.Remove((reading.Seq, reading.Timestamp.UtcTicks));
    }
}
