using System.Runtime.CompilerServices;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Filters;
using CloudEdge.Runtime.References;

namespace CloudEdge.Runtime.Messaging;

/// <summary>
/// A grain call: target, method, arguments and headers, plus the caller's pending result. The caller
/// awaits <see cref="Task"/>, a promise completed without a TaskCompletionSource allocation.
/// </summary>
internal sealed class Message<TResult> : Request, IEncodableMessage, IThreadPoolWorkItem
{
    private AsyncTaskMethodBuilder<TResult> builder;
    private int completed;
    private TResult? pendingResult;
    private Exception? pendingError;
    private Task<TResult>? invocation;
    private ActivationData? activation;

    public Message(GrainId target, MethodDescriptor<TResult> descriptor, object?[] arguments) : base(target)
    {
        Descriptor = descriptor;
        Arguments = arguments;
        builder = AsyncTaskMethodBuilder<TResult>.Create();
        _ = builder.Task;
    }

    public MethodDescriptor<TResult> Descriptor { get; }

    MethodDescriptor IEncodableMessage.Descriptor => Descriptor;

    public object?[] Arguments { get; }

    /// <summary>The caller's promise (created in the constructor, so completion never races its creation).</summary>
    public Task<TResult> Task => builder.Task;

    /// <summary>The runtime whose instruments record this call; null when metrics are off.</summary>
    public SiloRuntime? MeasuredBy { get; set; }

    public long StartTimestamp { get; set; }

    public override bool AlwaysInterleave => Descriptor.AlwaysInterleave;

    public override bool ReadOnly => Descriptor.ReadOnly;

    /// <summary>A one-way call must return to its caller once queued, so it never runs inline.</summary>
    public override bool MayRunInline => !Descriptor.OneWay;

    public override bool TimesOut => !Descriptor.OneWay;

    public override bool IsCompleted => Volatile.Read(ref completed) != 0;

    public override string DisplayName => Descriptor.DisplayName;

    public override void Execute(ActivationData target)
    {
        activation = target;
        if (IsCompleted && !Descriptor.OneWay)
        {
            // Timed out while queued behind another turn: nobody is waiting for the answer.
            target.OnRequestFinished(this);
            return;
        }

        ExecutionContext.Run(SiloRuntime.CleanContext, static state => ((Message<TResult>)state!).Run(), this);
    }

    private void Run()
    {
        var target = activation!;
        if (target.IsReentrant || AlwaysInterleave || ReadOnly)
        {
            // Several turns may be in flight: each async flow must know its own request.
            // (An exclusive turn is found through its activation, which saves an async-local write.)
            SiloRuntime.CurrentRequest.Value = this;
        }

        if (RequestContext is not null)
        {
            CloudEdge.Runtime.RequestContext.Import(RequestContext);
        }

        Task<TResult> task;
        try
        {
            task = target.Runtime.IncomingPipelineActive
                ? InvokeThroughFilters(target)
                : Descriptor.Invoker(target.GrainInstance!, Arguments);
        }
        catch (Exception exception)
        {
            task = System.Threading.Tasks.Task.FromException<TResult>(exception);
        }

        if (task.IsCompleted)
        {
            OnInvoked(task);
        }
        else
        {
            invocation = task;
            target.TrackInFlight(this);
            task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(OnInvokedLater);
        }
    }

    private async Task<TResult> InvokeThroughFilters(ActivationData target)
    {
        var context = new IncomingCallContext<TResult>(this, target);
        await context.Invoke();
        return (TResult)context.Result!;
    }

    private void OnInvokedLater() => OnInvoked(invocation!);

    private void OnInvoked(Task<TResult> task)
    {
        TResult result = default!;
        Exception? error = null;
        try
        {
            result = Descriptor.CopyResultValue(task.GetAwaiter().GetResult());
        }
        catch (Exception exception)
        {
            error = exception;
        }

        activation!.OnRequestFinished(this);
        if (error is null)
        {
            Complete(result);
        }
        else
        {
            if (Descriptor.OneWay)
            {
                activation.Runtime.LogOneWayFailure(this, error);
            }

            Fail(error);
        }
    }

    public void Complete(TResult result)
    {
        if (Interlocked.Exchange(ref completed, 1) != 0)
        {
            return;
        }

        MeasuredBy?.RecordCall(this, StartTimestamp, failed: false);
        pendingResult = result;
        Resolve();
    }

    public override void Fail(Exception exception)
    {
        if (Interlocked.Exchange(ref completed, 1) != 0)
        {
            return;
        }

        MeasuredBy?.RecordCall(this, StartTimestamp, failed: true);
        pendingError = exception;
        Resolve();
    }

    /// <summary>
    /// Completes the caller's task. A caller that is already waiting has a continuation that would run
    /// right here: inside an activation's work loop, that would let foreign code hold the activation
    /// (and block it, if the code waits synchronously), so it goes to the thread pool instead. A turn
    /// that ran inline and finished synchronously completes before its caller awaits: no hop.
    /// </summary>
    private void Resolve()
    {
        if (ActivationData.Running is not null && !(RanInline && invocation is null))
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
            return;
        }

        var context = SynchronizationContext.Current;
        if (context is not null)
        {
            SynchronizationContext.SetSynchronizationContext(null);
        }

        var current = ActivationData.Suspend();
        try
        {
            SetOutcome();
        }
        finally
        {
            ActivationData.Resume(current);
            if (context is not null)
            {
                SynchronizationContext.SetSynchronizationContext(context);
            }
        }
    }

    void IThreadPoolWorkItem.Execute() => SetOutcome();

    private void SetOutcome()
    {
        if (pendingError is { } error)
        {
            builder.SetException(error);
        }
        else
        {
            builder.SetResult(pendingResult!);
        }
    }
}
