namespace CloudEdge.Runtime;

/// <summary>
/// Base class for grain implementations. The runtime creates grains (never <c>new</c> one): it
/// resolves constructor parameters from DI and <see cref="PersistentStateAttribute"/>, then calls
/// <see cref="OnActivateAsync"/> before the first call is delivered.
/// </summary>
public abstract class Grain : IGrain, IGrainIdentity
{
    protected Grain()
    {
        GrainContext = RuntimeContext.ConstructingContext
            ?? throw new InvalidOperationException(
                $"{GetType().Name} was constructed outside the runtime. Grains are activated by the runtime: " +
                "get a reference with IGrainFactory.GetGrain<T>(key) and call it.");
    }

    /// <summary>The activation hosting this grain.</summary>
    public IGrainContext GrainContext { get; }

    GrainId IGrainIdentity.GrainId => GrainContext.GrainId;

    protected GrainId GrainId => GrainContext.GrainId;

    protected IGrainFactory GrainFactory => GrainContext.GrainFactory;

    protected IServiceProvider ServiceProvider => GrainContext.ActivationServices;

    /// <summary>Runs once per activation, before the first call. Throwing fails that call and the activation.</summary>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs once when the activation is collected, asked to deactivate, or the silo shuts down.</summary>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Deactivates this activation when the current turn ends; the next call activates a new one.</summary>
    protected void DeactivateOnIdle() =>
        GrainContext.Deactivate(new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "DeactivateOnIdle was called."));

    /// <summary>Keeps this activation alive for at least <paramref name="timeSpan"/>.</summary>
    protected void DelayDeactivation(TimeSpan timeSpan) => GrainContext.DelayDeactivation(timeSpan);

    /// <summary>Starts a timer owned by this activation; see <see cref="IGrainContext.RegisterTimer"/>.</summary>
    protected IGrainTimer RegisterGrainTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options) =>
        GrainContext.RegisterTimer(callback, options);

    /// <summary>Starts a timer owned by this activation with the given due time and period.</summary>
    protected IGrainTimer RegisterGrainTimer(Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period) =>
        GrainContext.RegisterTimer(callback, new GrainTimerCreationOptions(dueTime, period));

    /// <summary>Registers or updates a durable reminder; the grain must implement <see cref="IRemindable"/>.</summary>
    protected Task<IGrainReminder> RegisterOrUpdateReminder(string reminderName, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default)
    {
        if (this is not IRemindable)
        {
            throw new InvalidOperationException($"{GetType().Name} must implement IRemindable to register reminders.");
        }

        return Reminders.RegisterOrUpdateReminder(GrainId, reminderName, dueTime, period, cancellationToken);
    }

    protected Task UnregisterReminder(IGrainReminder reminder, CancellationToken cancellationToken = default) =>
        Reminders.UnregisterReminder(GrainId, reminder, cancellationToken);

    protected Task<IGrainReminder?> GetReminder(string reminderName, CancellationToken cancellationToken = default) =>
        Reminders.GetReminder(GrainId, reminderName, cancellationToken);

    protected Task<IReadOnlyList<IGrainReminder>> GetReminders(CancellationToken cancellationToken = default) =>
        Reminders.GetReminders(GrainId, cancellationToken);

    private IReminderRegistry Reminders =>
        ServiceProvider.GetService(typeof(IReminderRegistry)) as IReminderRegistry
            ?? throw new InvalidOperationException("No reminder service is configured for this silo.");
}
