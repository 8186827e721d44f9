using CloudEdge.Runtime.Messaging;
using CloudEdge.Runtime.Persistence;
using CloudEdge.Runtime.Timers;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Activation;

/// <summary>
/// One activation of a grain: the grain instance, its turn admission (which requests may run now),
/// and its work-item group. All of an activation's work (request turns, await continuations posted to
/// it as the turns' <see cref="SynchronizationContext"/>, timer ticks, activation and deactivation) runs
/// one item at a time, on the thread pool or inline on a caller's thread when the activation is idle,
/// so even interleaved turns never run in parallel.
/// </summary>
internal sealed class ActivationData : SynchronizationContext, IGrainContext, IThreadPoolWorkItem
{
    private const int ItemsPerQuantum = 64;
    private const int ItemsPerInlineQuantum = 8;
    private const int MaxInlineDepth = 2;

    [ThreadStatic]
    private static ActivationData? running;

    [ThreadStatic]
    private static int inlineDepth;

    private readonly GrainClassInfo grainClass;
    private readonly Queue<WorkItem> work = new(2);
    private State state = State.Activating;
    private bool scheduled;
    private int exclusive;
    private int shared;
    private int interleaved;
    private List<Request>? inFlight;
    private Request? exclusiveRequest;
    private Queue<Request>? waiting;
    private List<Request>? forward;
    private long lastActive;
    private long keepAliveUntil;
    private DeactivationReason? pendingDeactivation;
    private List<GrainTimer>? timers;
    private IServiceScope? scope;
    private bool touched;
    private TaskCompletionSource? deactivated;
    private LifecycleRequest? lifecycle;

    public ActivationData(SiloRuntime runtime, GrainClassInfo grainClass, GrainId grainId, long activationId)
    {
        Runtime = runtime;
        this.grainClass = grainClass;
        GrainId = grainId;
        ActivationId = activationId;
        lastActive = runtime.Now;
    }

    private enum State
    {
        Activating,
        Valid,
        Deactivating,
        Invalid,
    }

    private enum WorkKind : byte
    {
        Request,
        Post,
        Callback,
    }

    public SiloRuntime Runtime { get; }

    public GrainId GrainId { get; }

    public long ActivationId { get; }

    public object? GrainInstance { get; private set; }

    public IServiceProvider ActivationServices => scope?.ServiceProvider ?? Runtime.Services;

    public IGrainFactory GrainFactory => Runtime.GrainFactory;

    internal static ActivationData? Running => running;

    /// <summary>The request holding the activation exclusively; its outgoing calls carry its call chain.</summary>
    internal Request? ExclusiveRequest => exclusiveRequest;

    internal bool IsReentrant => grainClass.Reentrant;

    /// <summary>Leaves the activation's context while foreign code (a caller's continuation) runs on this thread.</summary>
    internal static ActivationData? Suspend()
    {
        var current = running;
        running = null;
        return current;
    }

    internal static void Resume(ActivationData? activation) => running = activation;

    /// <summary>Queues the first work of a new activation: construct, read state, OnActivateAsync.</summary>
    public void Start()
    {
        bool schedule;
        lock (this)
        {
            schedule = PushWork(new WorkItem(WorkKind.Callback, (Action<ActivationData>)(static a => a.BeginActivate()), null));
        }

        Schedule(schedule);
    }

    /// <summary>Accepts a request, or returns false when this activation is gone and the caller must look again.</summary>
    public bool TryEnqueue(Request request)
    {
        var schedule = false;
        var runInline = false;
        DeadlockException? deadlock = null;
        lock (this)
        {
            switch (state)
            {
                case State.Invalid:
                    return false;
                case State.Deactivating:
                    EnsureDeadline(request);
                    (forward ??= []).Add(request);
                    return true;
            }

            if (state == State.Valid && CanStart(request, ignoreQueue: false))
            {
                Admit(request);
                if (!scheduled && work.Count == 0 && request.MayRunInline && inlineDepth < MaxInlineDepth)
                {
                    // The activation is idle: run the turn on the caller's thread instead of paying a
                    // thread-pool hop. It takes the activation's only run slot, so turns stay one at a time.
                    scheduled = true;
                    runInline = true;
                    request.RanInline = true;
                }
                else
                {
                    EnsureDeadline(request);
                    schedule = PushWork(new WorkItem(WorkKind.Request, request, null));
                }
            }
            else if (request.Chain is { } chain && chain.Contains(GrainId))
            {
                var cycle = chain.ToList();
                cycle.Add(GrainId);
                deadlock = new DeadlockException(cycle);
            }
            else
            {
                EnsureDeadline(request);
                (waiting ??= new Queue<Request>()).Enqueue(request);
            }
        }

        if (deadlock is not null)
        {
            request.Fail(deadlock);
        }
        else if (runInline)
        {
            inlineDepth++;
            try
            {
                RunWorkItems(ItemsPerInlineQuantum, request);
            }
            finally
            {
                inlineDepth--;
            }
        }
        else
        {
            Schedule(schedule);
        }

        return true;
    }

    /// <summary>Stamps the response deadline when a request has to wait (a turn run at once needs none until it goes asynchronous).</summary>
    public void EnsureDeadline(Request request)
    {
        if (request.Deadline == 0 && request.TimesOut)
        {
            request.Deadline = Runtime.ResponseDeadline();
        }
    }

    /// <summary>A turn of <paramref name="request"/> has ended: admit whatever may run next.</summary>
    public void OnRequestFinished(Request request)
    {
        var schedule = false;
        lock (this)
        {
            if (grainClass.Reentrant || request.AlwaysInterleave)
            {
                interleaved--;
            }
            else if (request.ReadOnly)
            {
                shared--;
            }
            else
            {
                exclusive--;
                if (ReferenceEquals(exclusiveRequest, request))
                {
                    exclusiveRequest = null;
                }
            }

            if (request.TrackedInFlight)
            {
                inFlight!.Remove(request);
            }

            if (request.KeepsAlive)
            {
                // The collector turns this into a timestamp on its next pass: no clock read per call.
                touched = true;
            }

            if (state == State.Valid)
            {
                if (pendingDeactivation is not null)
                {
                    if (exclusive + shared + interleaved == 0)
                    {
                        schedule = BeginDeactivateLocked();
                    }
                }
                else
                {
                    schedule = AdmitWaitingLocked();
                }
            }
        }

        Schedule(schedule);
    }

    public void Deactivate(DeactivationReason reason)
    {
        var schedule = false;
        lock (this)
        {
            if (state != State.Valid || pendingDeactivation is not null)
            {
                return;
            }

            pendingDeactivation = reason;
            if (exclusive + shared + interleaved == 0)
            {
                schedule = BeginDeactivateLocked();
            }
        }

        Schedule(schedule);
    }

    /// <summary>Deactivates and completes when the activation is gone (or at once when it already is).</summary>
    public Task DeactivateAsync(DeactivationReason reason)
    {
        Task completion;
        lock (this)
        {
            if (state == State.Invalid)
            {
                return Task.CompletedTask;
            }

            completion = (deactivated ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            if (state == State.Activating)
            {
                // Let activation finish first; the deactivation request waits for it.
                pendingDeactivation ??= reason;
                return completion;
            }
        }

        Deactivate(reason);
        return completion;
    }

    public void DelayDeactivation(TimeSpan duration)
    {
        var until = Runtime.Now + Runtime.ToTicks(duration);
        lock (this)
        {
            keepAliveUntil = Math.Max(keepAliveUntil, until);
        }
    }

    public IGrainTimer RegisterTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new GrainTimer(this, callback, options);
        lock (this)
        {
            if (state is State.Deactivating or State.Invalid)
            {
                timer.Dispose();
                return timer;
            }

            (timers ??= []).Add(timer);
        }

        timer.Start();
        return timer;
    }

    internal void RemoveTimer(GrainTimer timer)
    {
        lock (this)
        {
            timers?.Remove(timer);
        }
    }

    /// <summary>True when the activation has been idle for at least the collection age.</summary>
    public bool IsCollectible(long now, long ageTicks)
    {
        lock (this)
        {
            if (touched)
            {
                touched = false;
                lastActive = now;
                return false;
            }

            return state == State.Valid && pendingDeactivation is null && exclusive + shared + interleaved == 0 &&
                   waiting is not { Count: > 0 } && now - lastActive >= ageTicks && now >= keepAliveUntil;
        }
    }

    /// <summary>Fails every call queued or running here whose deadline has passed.</summary>
    public void CollectTimedOut(long now, List<Request> expired)
    {
        lock (this)
        {
            if (inFlight is not null)
            {
                foreach (var request in inFlight)
                {
                    if (request.Deadline != 0 && request.Deadline <= now && !request.IsCompleted)
                    {
                        expired.Add(request);
                    }
                }
            }

            foreach (var item in work)
            {
                if (item.Kind == WorkKind.Request && item.Target is Request queued && queued.Deadline != 0 && queued.Deadline <= now && !queued.IsCompleted)
                {
                    expired.Add(queued);
                }
            }

            if (waiting is { Count: > 0 })
            {
                var count = waiting.Count;
                for (var i = 0; i < count; i++)
                {
                    var request = waiting.Dequeue();
                    if (request.Deadline != 0 && request.Deadline <= now)
                    {
                        expired.Add(request);
                    }
                    else
                    {
                        waiting.Enqueue(request);
                    }
                }
            }

            if (forward is not null)
            {
                expired.AddRange(forward.Where(r => r.Deadline != 0 && r.Deadline <= now));
            }
        }
    }

    /// <summary>Await continuations of grain code come back here, into the activation's work-item group.</summary>
    public override void Post(SendOrPostCallback d, object? state) => Queue(new WorkItem(WorkKind.Post, d, state));

    public override void Send(SendOrPostCallback d, object? state)
    {
        if (IsRunningOnThisThread)
        {
            d(state);
            return;
        }

        using var done = new ManualResetEventSlim();
        Exception? error = null;
        Post(_ =>
        {
            try
            {
                d(state);
            }
            catch (Exception exception)
            {
                error = exception;
            }
            finally
            {
                done.Set();
            }
        }, null);
        done.Wait();
        if (error is not null)
        {
            throw error;
        }
    }

    public override SynchronizationContext CreateCopy() => this;

    internal bool IsRunningOnThisThread => running == this;

    private void Queue(WorkItem item)
    {
        bool schedule;
        lock (this)
        {
            schedule = PushWork(item);
        }

        Schedule(schedule);
    }

    void IThreadPoolWorkItem.Execute() => RunWorkItems(ItemsPerQuantum, null);

    /// <summary>Runs work items one at a time (first <paramref name="first"/>, then the queue); the caller owns the run slot (scheduled == true).</summary>
    private void RunWorkItems(int quantum, Request? first)
    {
        var previous = SynchronizationContext.Current;
        var previousRunning = running;
        SetSynchronizationContext(this);
        running = this;
        try
        {
            if (first is not null)
            {
                Run(new WorkItem(WorkKind.Request, first, null));
            }

            for (var i = 0; i < quantum; i++)
            {
                WorkItem item;
                lock (this)
                {
                    if (!work.TryDequeue(out item))
                    {
                        scheduled = false;
                        return;
                    }
                }

                Run(item);
            }

            // Quantum used up: yield the thread so other activations get their turn.
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
        finally
        {
            running = previousRunning;
            SetSynchronizationContext(previous);
        }
    }

    private void Run(WorkItem item)
    {
        try
        {
            switch (item.Kind)
            {
                case WorkKind.Request:
                    ((Request)item.Target).Execute(this);
                    break;
                case WorkKind.Post:
                    ((SendOrPostCallback)item.Target)(item.State);
                    break;
                default:
                    ((Action<ActivationData>)item.Target)(this);
                    break;
            }
        }
        catch (Exception exception)
        {
            Runtime.LogWorkItemFailure(GrainId, exception);
        }
    }

    private bool PushWork(WorkItem item)
    {
        work.Enqueue(item);
        if (scheduled)
        {
            return false;
        }

        scheduled = true;
        return true;
    }

    private void Schedule(bool schedule)
    {
        if (schedule)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
        }
    }

    private bool CanStart(Request request, bool ignoreQueue)
    {
        if (grainClass.Reentrant || request.AlwaysInterleave)
        {
            return true;
        }

        if (!ignoreQueue && waiting is { Count: > 0 })
        {
            return false;
        }

        return request.ReadOnly ? exclusive == 0 : exclusive == 0 && shared == 0;
    }

    private void Admit(Request request)
    {
        if (grainClass.Reentrant || request.AlwaysInterleave)
        {
            interleaved++;
        }
        else if (request.ReadOnly)
        {
            shared++;
        }
        else
        {
            exclusive++;
            exclusiveRequest = request;
        }
    }

    /// <summary>A turn went asynchronous: from now on the timeout sweep must see it.</summary>
    public void TrackInFlight(Request request)
    {
        if (!request.TimesOut)
        {
            return;
        }

        lock (this)
        {
            EnsureDeadline(request);
            request.TrackedInFlight = true;
            (inFlight ??= new List<Request>(1)).Add(request);
        }
    }

    private bool AdmitWaitingLocked()
    {
        var schedule = false;
        while (waiting is { Count: > 0 })
        {
            var next = waiting.Peek();
            if (next.IsCompleted)
            {
                waiting.Dequeue();
                continue;
            }

            if (!CanStart(next, ignoreQueue: true))
            {
                break;
            }

            waiting.Dequeue();
            Admit(next);
            schedule |= PushWork(new WorkItem(WorkKind.Request, next, null));
        }

        return schedule;
    }

    private bool BeginDeactivateLocked()
    {
        state = State.Deactivating;
        if (waiting is { Count: > 0 })
        {
            (forward ??= []).AddRange(waiting);
            waiting.Clear();
        }

        return PushWork(new WorkItem(WorkKind.Callback, (Action<ActivationData>)(static a => a.BeginDeactivate()), null));
    }

    private LifecycleRequest Lifecycle => lifecycle ??= new LifecycleRequest(GrainId);

    private void BeginActivate() =>
        ExecutionContext.Run(SiloRuntime.CleanContext, static s => _ = ((ActivationData)s!).ActivateAsync(), this);

    private void BeginDeactivate() =>
        ExecutionContext.Run(SiloRuntime.CleanContext, static s => _ = ((ActivationData)s!).DeactivateAsync(), this);

    private async Task ActivateAsync()
    {
        SiloRuntime.CurrentRequest.Value = Lifecycle;
        try
        {
            scope = Runtime.Services.CreateScope();
            var states = new List<IPersistentStateLoader>();
            var previous = RuntimeContext.ConstructingContext;
            RuntimeContext.ConstructingContext = this;
            try
            {
                GrainInstance = grainClass.Create(this, scope.ServiceProvider, states);
            }
            finally
            {
                RuntimeContext.ConstructingContext = previous;
            }

            using var cancellation = new CancellationTokenSource(Runtime.Options.ResponseTimeout, Runtime.TimeProvider);
            foreach (var persistentState in states)
            {
                await persistentState.ReadStateAsync(cancellation.Token);
            }

            if (GrainInstance is Grain grain)
            {
                await grain.OnActivateAsync(cancellation.Token);
            }
        }
        catch (Exception exception)
        {
            await FailActivationAsync(exception);
            return;
        }

        var schedule = false;
        lock (this)
        {
            state = State.Valid;
            lastActive = Runtime.Now;
            if (pendingDeactivation is not null)
            {
                schedule = BeginDeactivateLocked();
            }
            else
            {
                schedule = AdmitWaitingLocked();
            }
        }

        Runtime.OnActivated();
        Schedule(schedule);
    }

    private async Task FailActivationAsync(Exception exception)
    {
        Runtime.LogActivationFailure(GrainId, exception);
        List<Request> rejected = [];
        lock (this)
        {
            state = State.Invalid;
            if (waiting is not null)
            {
                rejected.AddRange(waiting);
                waiting.Clear();
            }

            if (forward is not null)
            {
                rejected.AddRange(forward);
                forward.Clear();
            }
        }

        Runtime.Catalog.Remove(this);
        await DisposeScopeAsync();
        foreach (var request in rejected)
        {
            request.Fail(exception);
        }

        deactivated?.TrySetResult();
    }

    private async Task DeactivateAsync()
    {
        SiloRuntime.CurrentRequest.Value = Lifecycle;
        DeactivationReason reason;
        GrainTimer[] toStop;
        lock (this)
        {
            reason = pendingDeactivation ?? new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "Deactivation requested.");
            toStop = timers?.ToArray() ?? [];
        }

        foreach (var timer in toStop)
        {
            timer.Dispose();
        }

        if (GrainInstance is Grain grain)
        {
            using var cancellation = new CancellationTokenSource(Runtime.Options.DeactivationTimeout, Runtime.TimeProvider);
            try
            {
                await grain.OnDeactivateAsync(reason, cancellation.Token).WaitAsync(Runtime.Options.DeactivationTimeout, Runtime.TimeProvider);
            }
            catch (Exception exception)
            {
                Runtime.LogDeactivationFailure(GrainId, exception);
            }
        }

        List<Request> toForward;
        lock (this)
        {
            state = State.Invalid;
            toForward = forward ?? [];
            forward = null;
        }

        Runtime.Catalog.Remove(this);
        Runtime.OnDeactivated();
        if (GrainInstance is IDisposable disposable)
        {
            disposable.Dispose();
        }

        // References may still point at this activation object: let the grain and its state go.
        GrainInstance = null;
        await DisposeScopeAsync();
        foreach (var request in toForward)
        {
            Runtime.Redeliver(request);
        }

        TaskCompletionSource? completion;
        lock (this)
        {
            completion = deactivated;
        }

        completion?.TrySetResult();
    }

    private async ValueTask DisposeScopeAsync()
    {
        if (scope is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            scope?.Dispose();
        }
    }

    public override string ToString() => $"[Activation {GrainId} #{ActivationId} {state}]";

    private readonly record struct WorkItem(WorkKind Kind, object Target, object? State);

    /// <summary>The "current request" while the activation itself runs (activation, deactivation).</summary>
    private sealed class LifecycleRequest(GrainId self) : Request(self)
    {
        public override bool AlwaysInterleave => false;

        public override bool ReadOnly => false;

        public override bool IsCompleted => false;

        public override string DisplayName => "lifecycle";

        public override void Execute(ActivationData activation)
        {
        }

        public override void Fail(Exception exception)
        {
        }
    }
}
