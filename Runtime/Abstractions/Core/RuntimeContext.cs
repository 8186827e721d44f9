namespace CloudEdge.Runtime;

/// <summary>
/// Ambient runtime state. The runtime sets <see cref="ConstructingContext"/> while it constructs a
/// grain, which is how <see cref="Grain"/>'s constructor finds its activation without every grain
/// constructor having to take and forward it.
/// </summary>
public static class RuntimeContext
{
    [ThreadStatic]
    private static IGrainContext? constructing;

    /// <summary>The activation whose grain is being constructed on this thread, if any.</summary>
    public static IGrainContext? ConstructingContext
    {
        get => constructing;
        set => constructing = value;
    }
}
