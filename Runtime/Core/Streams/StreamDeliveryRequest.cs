using System.Diagnostics;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Streams;

/// <summary>
/// Delivers one stream event to a grain as a turn of its activation (activating it if needed). It
/// follows the grain to a new activation if the current one deactivates before it runs.
/// </summary>
internal sealed class StreamDeliveryRequest(GrainId target, Func<ActivationData, Task> deliver, Activity? activity) : TaskTurnRequest(target)
{
    private readonly TaskCompletionSource completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Completion => completion.Task;

    /// <summary>Completes when the turn starts, so that a delivery timeout does not count time spent queued behind other turns.</summary>
    public Task Started => started.Task;

    public override bool AlwaysInterleave => false;

    public override bool ReadOnly => false;

    public override bool IsCompleted => completion.Task.IsCompleted;

    public override string DisplayName => "stream delivery";

    public override void Execute(ActivationData activation)
    {
        started.TrySetResult();
        base.Execute(activation);
    }

    protected override Task RunTurn(ActivationData activation)
    {
        // The delivery span is current in the turn, so calls the consumer makes continue the producer's trace.
        Activity.Current = activity;
        return deliver(activation);
    }

    protected override void OnTurnFinished(ActivationData activation, Task task)
    {
        if (task.IsFaulted)
        {
            completion.TrySetException(task.Exception!.GetBaseException());
        }
        else if (task.IsCanceled)
        {
            completion.TrySetCanceled();
        }
        else
        {
            completion.TrySetResult();
        }
    }

    public override void Fail(Exception exception) => completion.TrySetException(exception);
}
