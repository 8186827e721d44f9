using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Timers;

/// <summary>
/// A timer owned by an activation. Each tick is a request to the activation (a turn of its own, or an
/// interleaving one), and the next tick is armed only when the previous one has finished, so ticks
/// never overlap. Disposed when the activation deactivates.
/// </summary>
internal sealed class GrainTimer : IGrainTimer
{
    private readonly ActivationData activation;
    private readonly Func<CancellationToken, Task> callback;
    private readonly bool interleave;
    private readonly bool keepAlive;
    private readonly CancellationTokenSource cancellation = new();
    private readonly Lock gate = new();
    private ITimer? timer;
    private TimeSpan dueTime;
    private TimeSpan period;
    private bool ticking;
    private bool disposed;

    public GrainTimer(ActivationData activation, Func<CancellationToken, Task> callback, GrainTimerCreationOptions options)
    {
        ValidateDuration(options.DueTime, nameof(options.DueTime));
        ValidateDuration(options.Period, nameof(options.Period));
        this.activation = activation;
        this.callback = callback;
        dueTime = options.DueTime;
        period = options.Period;
        interleave = options.Interleave;
        keepAlive = options.KeepAlive;
    }

    public void Start()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            timer = activation.Runtime.TimeProvider.CreateTimer(static s => ((GrainTimer)s!).OnDue(), this, dueTime, Timeout.InfiniteTimeSpan);
        }
    }

    public void Change(TimeSpan dueTime, TimeSpan period)
    {
        ValidateDuration(dueTime, nameof(dueTime));
        ValidateDuration(period, nameof(period));
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            this.dueTime = dueTime;
            this.period = period;
            if (!ticking)
            {
                timer?.Change(dueTime, Timeout.InfiniteTimeSpan);
            }
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            timer?.Dispose();
        }

        cancellation.Cancel();
        activation.RemoveTimer(this);
    }

    private void OnDue()
    {
        lock (gate)
        {
            if (disposed || ticking)
            {
                return;
            }

            ticking = true;
        }

        if (!activation.TryEnqueue(new TickRequest(this)))
        {
            Dispose();
        }
    }

    private void OnTickFinished()
    {
        lock (gate)
        {
            ticking = false;
            if (disposed || period == Timeout.InfiniteTimeSpan)
            {
                return;
            }

            timer?.Change(period, Timeout.InfiniteTimeSpan);
        }
    }

    private static void ValidateDuration(TimeSpan value, string name)
    {
        if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(name, value, "A timer duration must be zero or more, or Timeout.InfiniteTimeSpan.");
        }
    }

    private sealed class TickRequest(GrainTimer owner) : TaskTurnRequest(owner.activation.GrainId)
    {
        public override bool AlwaysInterleave => owner.interleave;

        public override bool ReadOnly => false;

        public override bool KeepsAlive => owner.keepAlive;

        public override bool Forwardable => false;

        public override bool IsCompleted => false;

        public override string DisplayName => "timer";

        protected override Task RunTurn(ActivationData activation) =>
            owner.disposed ? Task.CompletedTask : owner.callback(owner.cancellation.Token);

        protected override void OnTurnFinished(ActivationData activation, Task task)
        {
            if (task.IsFaulted)
            {
                activation.Runtime.LogTimerFailure(activation.GrainId, task.Exception!.GetBaseException());
            }

            owner.OnTickFinished();
        }

        public override void Fail(Exception exception) => owner.OnTickFinished();
    }
}
