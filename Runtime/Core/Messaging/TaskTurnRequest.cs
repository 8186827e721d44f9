using CloudEdge.Runtime.Activation;

namespace CloudEdge.Runtime.Messaging;

/// <summary>
/// A request whose turn is an untyped <see cref="Task"/> (a timer tick, a stream delivery): it runs as a
/// turn of its activation in a clean execution context, and finishes at once when the task completed
/// synchronously, or when it completes. Grain calls keep their own typed path (<see cref="Message{TResult}"/>).
/// </summary>
internal abstract class TaskTurnRequest(GrainId target) : Request(target)
{
    private ActivationData? activation;
    private Task? running;

    public override void Execute(ActivationData activation)
    {
        this.activation = activation;
        ExecutionContext.Run(SiloRuntime.CleanContext, static s => ((TaskTurnRequest)s!).Run(), this);
    }

    /// <summary>Starts the turn's work; runs with this request as the current request of the flow.</summary>
    protected abstract Task RunTurn(ActivationData activation);

    /// <summary>Called once the activation has been told the turn ended, with the turn's task (completed).</summary>
    protected abstract void OnTurnFinished(ActivationData activation, Task task);

    private void Run()
    {
        SiloRuntime.CurrentRequest.Value = this;
        Task task;
        try
        {
            task = RunTurn(activation!);
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
        OnTurnFinished(activation, task);
    }
}
