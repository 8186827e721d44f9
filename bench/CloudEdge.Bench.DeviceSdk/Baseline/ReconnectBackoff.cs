namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>
/// Exponential backoff with "equal jitter": attempt n waits between half and all of min(max, initial * 2^n),
/// so a fleet that lost its broker at the same instant does not come back at the same instant.
/// </summary>
internal sealed class ReconnectBackoff(TimeSpan initial, TimeSpan maximum, Func<double> nextUnitRandom)
{
    public TimeSpan Delay(int attempt)
    {
        var exponent = Math.Min(attempt, 30);
        var ceiling = Math.Min(maximum.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, exponent));
        var jittered = ceiling / 2 + nextUnitRandom() * ceiling / 2;
        return TimeSpan.FromMilliseconds(jittered);
    }
}
