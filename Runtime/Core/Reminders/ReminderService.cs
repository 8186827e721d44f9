using Microsoft.Extensions.Logging;

namespace CloudEdge.Runtime.Reminders;

/// <summary>
/// Durable reminders. At start it loads every reminder from the table (and re-reads it every
/// <see cref="RefreshPeriod"/>, so reminders written by another silo or tool are picked up), then keeps
/// one TimeProvider timer armed for the earliest due tick; a due tick calls <see cref="IRemindable.ReceiveReminder"/>
/// through a grain reference, which activates the grain if it is not active. A reminder never has two
/// ticks in flight. Registrations go to the table first, so they survive a restart.
/// </summary>
internal sealed partial class ReminderService(IReminderTable table, IGrainFactory grainFactory, TimeProvider timeProvider, ILogger<ReminderService> logger)
    : IReminderRegistry, IDisposable
{
    private readonly Dictionary<(GrainId, string), LocalReminder> reminders = [];
    private readonly Lock gate = new();
    private ITimer? timer;
    private ITimer? refresher;
    private bool started;
    private bool stopped;
    private long localChanges;

    /// <summary>How often the table is read again.</summary>
    public static TimeSpan RefreshPeriod { get; } = TimeSpan.FromMinutes(1);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var entries = await table.ReadAllAsync(cancellationToken);
        lock (gate)
        {
            Merge(entries);
            timer = timeProvider.CreateTimer(static s => ((ReminderService)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            refresher = timeProvider.CreateTimer(static s => _ = ((ReminderService)s!).RefreshAsync(), this, RefreshPeriod, RefreshPeriod);
            started = true;
        }

        Rearm();
    }

    public void Stop()
    {
        lock (gate)
        {
            stopped = true;
            timer?.Dispose();
            refresher?.Dispose();
        }
    }

    private async Task RefreshAsync()
    {
        try
        {
            long changesBefore;
            lock (gate)
            {
                changesBefore = localChanges;
            }

            var entries = await table.ReadAllAsync(CancellationToken.None);
            lock (gate)
            {
                // A registration made while the table was being read may be missing from this snapshot:
                // skip this merge rather than drop it; the next refresh sees it.
                if (stopped || localChanges != changesBefore)
                {
                    return;
                }

                Merge(entries);
            }

            Rearm();
        }
        catch (Exception exception)
        {
            LogRefreshFailed(logger, exception);
        }
    }

    /// <summary>Makes the local view match the table: new and changed reminders are (re)scheduled, removed ones dropped.</summary>
    private void Merge(IReadOnlyList<ReminderEntry> entries)
    {
        var now = timeProvider.GetUtcNow();
        var seen = new HashSet<(GrainId, string)>();
        foreach (var entry in entries)
        {
            var key = (entry.GrainId, entry.Name);
            seen.Add(key);
            if (!reminders.TryGetValue(key, out var existing) || existing.Entry != entry)
            {
                reminders[key] = new LocalReminder(entry, NextTick(entry, now));
            }
        }

        foreach (var key in reminders.Keys.Where(k => !seen.Contains(k)).ToArray())
        {
            reminders.Remove(key);
        }
    }

    public async Task<IGrainReminder> RegisterOrUpdateReminder(GrainId grainId, string reminderName, TimeSpan dueTime, TimeSpan period, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(reminderName);
        ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        var entry = new ReminderEntry(grainId, reminderName, timeProvider.GetUtcNow() + dueTime, period);
        await table.UpsertAsync(entry, cancellationToken);
        lock (gate)
        {
            reminders[(grainId, reminderName)] = new LocalReminder(entry, entry.StartAt);
            localChanges++;
        }

        Rearm();
        return new GrainReminder(reminderName);
    }

    public async Task UnregisterReminder(GrainId grainId, IGrainReminder reminder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reminder);
        await table.RemoveAsync(grainId, reminder.ReminderName, cancellationToken);
        lock (gate)
        {
            reminders.Remove((grainId, reminder.ReminderName));
            localChanges++;
        }

        Rearm();
    }

    public Task<IGrainReminder?> GetReminder(GrainId grainId, string reminderName, CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            return Task.FromResult<IGrainReminder?>(reminders.ContainsKey((grainId, reminderName)) ? new GrainReminder(reminderName) : null);
        }
    }

    public Task<IReadOnlyList<IGrainReminder>> GetReminders(GrainId grainId, CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            return Task.FromResult<IReadOnlyList<IGrainReminder>>(
                reminders.Values.Where(r => r.Entry.GrainId == grainId).Select(r => (IGrainReminder)new GrainReminder(r.Entry.Name)).ToArray());
        }
    }

    public void Dispose() => Stop();

    /// <summary>The first tick at or after <paramref name="now"/>: ticks missed while the silo was down are skipped, as in Orleans.</summary>
    private static DateTimeOffset NextTick(ReminderEntry entry, DateTimeOffset now)
    {
        if (now <= entry.StartAt)
        {
            return entry.StartAt;
        }

        var periods = (long)Math.Ceiling((now - entry.StartAt).Ticks / (double)entry.Period.Ticks);
        return entry.StartAt + TimeSpan.FromTicks(entry.Period.Ticks * periods);
    }

    private void OnTimer()
    {
        var now = timeProvider.GetUtcNow();
        List<(LocalReminder Reminder, TickStatus Status)> due = [];
        lock (gate)
        {
            if (stopped)
            {
                return;
            }

            foreach (var reminder in reminders.Values)
            {
                if (!reminder.Firing && reminder.NextDue <= now)
                {
                    reminder.Firing = true;
                    due.Add((reminder, new TickStatus(reminder.Entry.StartAt, reminder.Entry.Period, reminder.NextDue)));
                    reminder.NextDue = NextTick(reminder.Entry, reminder.NextDue + TimeSpan.FromTicks(1));
                }
            }
        }

        foreach (var (reminder, status) in due)
        {
            _ = DeliverAsync(reminder, status);
        }

        Rearm();
    }

    private async Task DeliverAsync(LocalReminder reminder, TickStatus status)
    {
        try
        {
            await grainFactory.GetGrain<IRemindable>(reminder.Entry.GrainId).ReceiveReminder(reminder.Entry.Name, status);
        }
        catch (Exception exception)
        {
            LogDeliveryFailed(logger, exception, reminder.Entry.Name, reminder.Entry.GrainId);
        }
        finally
        {
            lock (gate)
            {
                reminder.Firing = false;
            }

            Rearm();
        }
    }

    private void Rearm()
    {
        lock (gate)
        {
            if (!started || stopped || timer is null)
            {
                return;
            }

            var next = DateTimeOffset.MaxValue;
            foreach (var reminder in reminders.Values)
            {
                if (!reminder.Firing && reminder.NextDue < next)
                {
                    next = reminder.NextDue;
                }
            }

            if (next == DateTimeOffset.MaxValue)
            {
                timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                return;
            }

            var delay = next - timeProvider.GetUtcNow();
            timer.Change(delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
        }
    }

    [LoggerMessage(21, LogLevel.Warning, "Reading the reminder table failed; the current reminders stay scheduled")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(20, LogLevel.Warning, "Reminder {Name} of {GrainId} could not be delivered")]
    private static partial void LogDeliveryFailed(ILogger logger, Exception exception, string name, GrainId grainId);

    private sealed class LocalReminder(ReminderEntry entry, DateTimeOffset nextDue)
    {
        public ReminderEntry Entry { get; } = entry;

        public DateTimeOffset NextDue { get; set; } = nextDue;

        public bool Firing { get; set; }
    }

    private sealed record GrainReminder(string ReminderName) : IGrainReminder;
}
