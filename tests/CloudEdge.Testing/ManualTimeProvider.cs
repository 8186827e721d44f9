namespace CloudEdge.Testing;

/// <summary>
/// A clock that moves only when the test says so (Microsoft.Extensions.TimeProvider.Testing does not
/// restore here). <see cref="Advance"/> fires due timers in due order, each with the clock set to its
/// due time, and runs their callbacks outside the lock so a callback may create or change timers.
/// Callbacks run inline in <see cref="Advance"/> by default; code under test whose callbacks block on work
/// that the test thread must drive (a grain turn, say) asks for them on the thread pool instead.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock gate = new();
    private readonly List<ManualTimer> timers = [];
    private readonly DateTimeOffset origin;
    private readonly bool fireTimersOnThreadPool;
    private long elapsedTicks;

    public ManualTimeProvider(DateTimeOffset? start = null, bool fireTimersOnThreadPool = false)
    {
        origin = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        this.fireTimersOnThreadPool = fireTimersOnThreadPool;
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (gate)
        {
            return elapsedTicks;
        }
    }

    public override DateTimeOffset GetUtcNow() => origin + TimeSpan.FromTicks(GetTimestamp());

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Timers armed and waiting to fire.</summary>
    public int ActiveTimerCount
    {
        get
        {
            lock (gate)
            {
                return timers.Count;
            }
        }
    }

    /// <summary>Moves the clock forward by <paramref name="by"/>, firing every timer that falls due on the way.</summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        long target;
        lock (gate)
        {
            target = elapsedTicks + by.Ticks;
        }

        while (true)
        {
            ManualTimer? next = null;
            lock (gate)
            {
                foreach (var timer in timers)
                {
                    if (timer.Due <= target && (next is null || timer.Due < next.Due))
                    {
                        next = timer;
                    }
                }

                if (next is null)
                {
                    elapsedTicks = Math.Max(elapsedTicks, target);
                    return;
                }

                elapsedTicks = Math.Max(elapsedTicks, next.Due);
                if (next.Period > 0)
                {
                    next.Due += next.Period;
                }
                else
                {
                    timers.Remove(next);
                }
            }

            if (fireTimersOnThreadPool)
            {
                var timer = next;
                ThreadPool.UnsafeQueueUserWorkItem(_ => timer.Fire(), null);
            }
            else
            {
                next.Fire();
            }
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public long Due { get; set; }

        public long Period { get; private set; }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner.gate)
            {
                owner.timers.Remove(this);
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    return true;
                }

                Due = owner.elapsedTicks + Math.Max(0, dueTime.Ticks);
                Period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? 0 : period.Ticks;
                owner.timers.Add(this);
            }

            return true;
        }

        public void Dispose()
        {
            lock (owner.gate)
            {
                owner.timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
