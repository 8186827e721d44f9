namespace CloudEdge.Runtime;

/// <summary>
/// What an activation offers the grain it hosts. The runtime implements it; grains reach it through
/// <see cref="Grain.GrainContext"/>.
/// </summary>
public interface IGrainContext
{
    GrainId GrainId { get; }

    /// <summary>Services scoped to this activation (grain storage, reminders, the grain factory...).</summary>
    IServiceProvider ActivationServices { get; }

    IGrainFactory GrainFactory { get; }

    /// <summary>Asks the runtime to deactivate this activation once the current turn ends.</summary>
    void Deactivate(DeactivationReason reason);

    /// <summary>Keeps the activation alive for at least this long, whatever the idle collection age.</summary>
    void DelayDeactivation(TimeSpan duration);

    /// <summary>
    /// Starts a timer owned by this activation. Its callback runs as a turn of the grain and never
    /// overlaps itself; it stops when the activation is deactivated.
    /// </summary>
    IGrainTimer RegisterTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options);
}
