namespace CloudEdge.Runtime;

/// <summary>A timer owned by an activation. Dispose it to stop it.</summary>
public interface IGrainTimer : IDisposable
{
    /// <summary>Changes when the timer next fires and its period; <see cref="Timeout.InfiniteTimeSpan"/> period fires once.</summary>
    void Change(TimeSpan dueTime, TimeSpan period);
}

/// <summary>How a grain timer fires.</summary>
/// <param name="DueTime">Delay before the first tick.</param>
/// <param name="Period">Delay between the end of one tick and the start of the next; <see cref="Timeout.InfiniteTimeSpan"/> for one tick.</param>
public readonly record struct GrainTimerCreationOptions(TimeSpan DueTime, TimeSpan Period)
{
    /// <summary>Ticks interleave with grain calls instead of waiting for a turn of their own.</summary>
    public bool Interleave { get; init; }

    /// <summary>A tick counts as activity, keeping the activation from idle collection.</summary>
    public bool KeepAlive { get; init; }
}
