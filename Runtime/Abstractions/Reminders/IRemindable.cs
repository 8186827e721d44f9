namespace CloudEdge.Runtime;

/// <summary>A grain that receives durable reminders. Reminders survive deactivation and silo restarts.</summary>
public interface IRemindable : IGrain
{
    Task ReceiveReminder(string reminderName, TickStatus status);
}

/// <summary>When a reminder tick was due.</summary>
public readonly record struct TickStatus(DateTimeOffset FirstTickTime, TimeSpan Period, DateTimeOffset CurrentTickTime);

/// <summary>A registered reminder.</summary>
public interface IGrainReminder
{
    string ReminderName { get; }
}

/// <summary>The reminder service, available from an activation's services.</summary>
public interface IReminderRegistry
{
    Task<IGrainReminder> RegisterOrUpdateReminder(GrainId grainId, string reminderName, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default);

    Task UnregisterReminder(GrainId grainId, IGrainReminder reminder, CancellationToken cancellationToken = default);

    Task<IGrainReminder?> GetReminder(GrainId grainId, string reminderName, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<IGrainReminder>> GetReminders(GrainId grainId, CancellationToken cancellationToken = default);
}
