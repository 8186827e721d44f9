using System.Diagnostics;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Streams;

/// <summary>
/// Delivers one stream event to a grain as a turn of its activation (activating it if needed). It
/// follows the grain to a new activation if the current one deactivates before it runs.
/// </summary>
internal sealed class StreamDeliveryRequest(GrainId target, Func<ActivationData, Task> deliver, Activity? activity) : Request(target)
{
    private readonly TaskCompletionSource completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ActivationData? activation;
    private Task? running;

    public Task Completion => completion.Task;

    /// <summary>Completes when the turn starts, so that a delivery timeout does not count time spent queued behind other turns.</summary>
    public Task Started => started.Task;

    public override bool AlwaysInterleave => false;

    public override bool ReadOnly => false;

    public override bool IsCompleted => completion.Task.IsCompleted;

    public override string DisplayName => "stream delivery";

    public override void Execute(ActivationData activation)
    {
        this.activation = activation;
        started.TrySetResult();
        ExecutionContext.Run(SiloRuntime.CleanContext, static s => ((StreamDeliveryRequest)s!).Run(), this);
    }

    private void Run()
    {
        SiloRuntime.CurrentRequest.Value = this;
        // The delivery span is current in the turn, so calls the consumer makes continue the producer's trace.
        Activity.Current = activity;
        Task task;
        try
        {
            task = deliver(activation!);
        }
        catch (Exception exception)
        {
            task = Task.FromException(exception);
        }

        if (task.IsCompleted)
        {
            Finish(task);
        }
        else
        {
            running = task;
            task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(() => Finish(running));
        }
    }

    private void Finish(Task task)
    {
        activation!.OnRequestFinished(this);
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
