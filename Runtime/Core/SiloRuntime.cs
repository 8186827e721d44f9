using System.Diagnostics;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Cluster;
using CloudEdge.Runtime.Diagnostics;
using CloudEdge.Runtime.Filters;
using CloudEdge.Runtime.Hosting;
using CloudEdge.Runtime.Messaging;
using CloudEdge.Runtime.References;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudEdge.Runtime;

/// <summary>
/// The engine of one silo: sends requests (outgoing filters, placement, directory, transport), hosts
/// activations (catalog), times calls out, collects idle activations and shuts down gracefully.
/// </summary>
internal sealed partial class SiloRuntime : IDisposable
{
    /// <summary>The request whose turn is running in this async flow; outgoing calls read their caller from it.</summary>
    internal static readonly AsyncLocal<Request?> CurrentRequest = new();

    /// <summary>An execution context with no ambient values, so grain turns never inherit the caller's async locals.</summary>
    internal static readonly ExecutionContext CleanContext = CreateCleanContext();

    private readonly ILogger logger;
    private readonly RuntimeInstruments instruments;
    private readonly IPlacementDirector placement;
    private readonly IMessageTransport transport;
    private readonly IIncomingGrainCallFilter[] userIncomingFilters;
    private readonly IOutgoingGrainCallFilter[] userOutgoingFilters;
    private readonly long responseTimeoutTicks;
    private ITimer? collector;
    private ITimer? timeoutSweeper;
    private volatile bool stopping;
    private long activeActivations;

    public SiloRuntime(
        IServiceProvider services,
        IOptions<SiloOptions> options,
        GrainClassRegistry registry,
        TimeProvider timeProvider,
        IEnumerable<IIncomingGrainCallFilter> incomingFilters,
        IEnumerable<IOutgoingGrainCallFilter> outgoingFilters,
        ILogger<SiloRuntime> logger,
        System.Diagnostics.Metrics.IMeterFactory? meterFactory = null)
    {
        Services = services;
        Options = options.Value;
        Options.Validate();
        Registry = registry;
        TimeProvider = timeProvider;
        this.logger = logger;
        SiloAddress = new SiloAddress(Options.SiloName, "local", timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        Catalog = new Catalog(this);
        Directory = new LocalGrainDirectory();
        placement = new LocalPlacementDirector();
        transport = new LocalMessageTransport(() => Catalog, SiloAddress);
        userIncomingFilters = incomingFilters.ToArray();
        userOutgoingFilters = outgoingFilters.ToArray();
        IncomingFilters = [new TracingIncomingFilter(), .. userIncomingFilters];
        OutgoingFilters = [new TracingOutgoingFilter(), .. userOutgoingFilters];
        responseTimeoutTicks = ToTicks(Options.ResponseTimeout);
        GrainFactory = new GrainFactory(this);
        instruments = new RuntimeInstruments(meterFactory, Options.SiloName, () => Interlocked.Read(ref activeActivations));
    }

    public IServiceProvider Services { get; }

    public SiloOptions Options { get; }

    public GrainClassRegistry Registry { get; }

    public TimeProvider TimeProvider { get; }

    public GrainFactory GrainFactory { get; }

    public Catalog Catalog { get; }

    public IGrainDirectory Directory { get; }

    public SiloAddress SiloAddress { get; }

    public IIncomingGrainCallFilter[] IncomingFilters { get; }

    public IOutgoingGrainCallFilter[] OutgoingFilters { get; }

    /// <summary>Filters run only when someone registered one or listens to the runtime's spans: the common path stays cheap.</summary>
    public bool IncomingPipelineActive => userIncomingFilters.Length > 0 || RuntimeTelemetry.Source.HasListeners();

    public bool OutgoingPipelineActive => userOutgoingFilters.Length > 0 || RuntimeTelemetry.Source.HasListeners();

    public long Now => TimeProvider.GetTimestamp();

    public long ToTicks(TimeSpan duration) =>
        duration == Timeout.InfiniteTimeSpan ? long.MaxValue / 2 : (long)(duration.TotalSeconds * TimeProvider.TimestampFrequency);

    /// <summary>A call through a grain reference: the request is built here and sent.</summary>
    public Task<TResult> Invoke<TResult>(GrainReference reference, MethodDescriptor<TResult> descriptor, object?[] arguments)
    {
        var message = new Message<TResult>(reference.GrainId, descriptor, arguments);
        if ((CurrentRequest.Value ?? ActivationData.Running?.ExclusiveRequest) is { } caller)
        {
            message.Source = caller.Target;
            if (!descriptor.OneWay)
            {
                // A one-way caller does not wait, so it cannot be part of a deadlock.
                message.Chain = caller.OutgoingChain;
            }
        }

        message.RequestContext = RequestContext.Export();
        if (instruments.Enabled)
        {
            message.MeasuredBy = this;
            message.StartTimestamp = Stopwatch.GetTimestamp();
        }

        if (OutgoingPipelineActive)
        {
            return InvokeThroughFilters(message);
        }

        Send(message, reference);

        // A one-way caller learns nothing once the call is queued, but does learn that it was refused.
        return descriptor.OneWay && !message.IsCompleted ? CompletedOneWay<TResult>.Task : message.Task;
    }

    private static async Task<TResult> InvokeThroughFilters<TResult>(Message<TResult> message, OutgoingCallContext<TResult> context)
    {
        await context.Invoke();
        return message.Descriptor.OneWay ? default! : (TResult)context.Result!;
    }

    private Task<TResult> InvokeThroughFilters<TResult>(Message<TResult> message) =>
        InvokeThroughFilters(message, new OutgoingCallContext<TResult>(message, this));

    /// <summary>The end of the outgoing path: refuses calls while stopping, adds the trace context, then delivers.</summary>
    public void Send(Request request, GrainReference? origin = null)
    {
        if (stopping)
        {
            request.Fail(new SiloUnavailableException($"Silo {Options.SiloName} is shutting down; the call to {request.Target}.{request.DisplayName} was not accepted."));
            return;
        }

        if (Activity.Current is { } activity)
        {
            request.RequestContext = RuntimeTelemetry.Inject(request.RequestContext, activity);
        }

        // A reference remembers the activation it last reached: no directory lookup while it lives.
        if (origin?.CachedActivation is { } cached && cached.TryEnqueue(request))
        {
            return;
        }

        var delivered = Route(request);
        if (origin is not null)
        {
            origin.CachedActivation = delivered;
        }
    }

    /// <summary>The deadline of a call whose response clock starts now.</summary>
    public long ResponseDeadline() => Now + responseTimeoutTicks;

    /// <summary>Delivers a request that waited on a deactivated activation to the grain's next activation.</summary>
    public void Redeliver(Request request)
    {
        if (!request.Forwardable)
        {
            return;
        }

        if (stopping)
        {
            request.Fail(new SiloUnavailableException($"Silo {Options.SiloName} is shutting down; the call to {request.Target}.{request.DisplayName} was not run."));
            return;
        }

        Route(request);
    }

    private ActivationData? Route(Request request)
    {
        if (Catalog.TryGet(request.Target, out var local) && local.TryEnqueue(request))
        {
            return local;
        }

        var destination = Directory.TryLookup(request.Target, out var address)
            ? address.Silo
            : placement.PlaceGrain(request.Target, SiloAddress);
        transport.Send(destination, request);
        return Catalog.TryGet(request.Target, out local) ? local : null;
    }

    public void RecordCall(Request request, long startTimestamp, bool failed)
    {
        var tags = new KeyValuePair<string, object?>("rpc.method", request.DisplayName);
        instruments.Calls.Add(1, tags);
        if (failed)
        {
            instruments.Errors.Add(1, tags);
        }

        if (startTimestamp != 0 && instruments.Duration.Enabled)
        {
            instruments.Duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds, tags);
        }
    }

    public void OnActivated() => Interlocked.Increment(ref activeActivations);

    public void OnDeactivated() => Interlocked.Decrement(ref activeActivations);

    public void Start()
    {
        var quantum = Options.CollectionQuantum;
        collector = TimeProvider.CreateTimer(static s => ((SiloRuntime)s!).CollectIdle(), this, quantum, quantum);
        var sweep = TimeSpan.FromTicks(Math.Clamp(Options.ResponseTimeout.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));
        timeoutSweeper = TimeProvider.CreateTimer(static s => ((SiloRuntime)s!).SweepTimeouts(), this, sweep, sweep);
    }

    /// <summary>Graceful shutdown: refuse new calls, let running turns finish, deactivate everything (bounded).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        stopping = true;
        collector?.Dispose();
        var reason = new DeactivationReason(DeactivationReasonCode.ShuttingDown, "The silo is shutting down.");
        var deactivations = Catalog.All.Select(a => a.DeactivateAsync(reason)).ToArray();
        try
        {
            // Each OnDeactivateAsync is bounded by DeactivationTimeout; allow a second one for turns still running.
            await Task.WhenAll(deactivations).WaitAsync(Options.DeactivationTimeout * 2, TimeProvider, cancellationToken);
        }
        catch (Exception exception) when (exception is TimeoutException or OperationCanceledException)
        {
            LogShutdownIncomplete(logger, Catalog.Count);
        }

        timeoutSweeper?.Dispose();
    }

    internal void CollectIdle()
    {
        var now = Now;
        var age = ToTicks(Options.CollectionAge);
        var reason = new DeactivationReason(DeactivationReasonCode.ActivationIdle, $"Idle for {Options.CollectionAge}.");
        foreach (var activation in Catalog.All)
        {
            if (activation.IsCollectible(now, age))
            {
                activation.Deactivate(reason);
            }
        }
    }

    internal void SweepTimeouts()
    {
        var now = Now;
        var expired = new List<Request>();
        foreach (var activation in Catalog.All)
        {
            activation.CollectTimedOut(now, expired);
        }

        foreach (var request in expired)
        {
            request.TimeOut(Options.ResponseTimeout);
        }
    }

    public void LogOneWayFailure(Request request, Exception exception) => LogOneWayFailed(logger, exception, request.Target, request.DisplayName);

    public void LogWorkItemFailure(GrainId grainId, Exception exception) => LogWorkItemFailed(logger, exception, grainId);

    public void LogActivationFailure(GrainId grainId, Exception exception) => LogActivationFailed(logger, exception, grainId);

    public void LogDeactivationFailure(GrainId grainId, Exception exception) => LogDeactivationFailed(logger, exception, grainId);

    public void LogTimerFailure(GrainId grainId, Exception exception) => LogTimerFailed(logger, exception, grainId);

    public void Dispose()
    {
        collector?.Dispose();
        timeoutSweeper?.Dispose();
        instruments.Dispose();
    }

    private static ExecutionContext CreateCleanContext()
    {
        ExecutionContext? captured = null;
        var marker = new AsyncLocal<bool>();
        var thread = new Thread(() =>
        {
            marker.Value = true;
            captured = ExecutionContext.Capture();
        });
        thread.UnsafeStart();
        thread.Join();
        return captured!;
    }

    [LoggerMessage(1, LogLevel.Warning, "One-way call {Target}.{Method} failed")]
    private static partial void LogOneWayFailed(ILogger logger, Exception exception, GrainId target, string method);

    [LoggerMessage(2, LogLevel.Error, "A work item of activation {GrainId} failed")]
    private static partial void LogWorkItemFailed(ILogger logger, Exception exception, GrainId grainId);

    [LoggerMessage(3, LogLevel.Warning, "Activation of {GrainId} failed")]
    private static partial void LogActivationFailed(ILogger logger, Exception exception, GrainId grainId);

    [LoggerMessage(4, LogLevel.Warning, "Deactivation of {GrainId} failed or timed out")]
    private static partial void LogDeactivationFailed(ILogger logger, Exception exception, GrainId grainId);

    [LoggerMessage(5, LogLevel.Warning, "A timer of {GrainId} failed")]
    private static partial void LogTimerFailed(ILogger logger, Exception exception, GrainId grainId);

    [LoggerMessage(6, LogLevel.Warning, "Shutdown ended with {Count} activations not deactivated in time")]
    private static partial void LogShutdownIncomplete(ILogger logger, int count);

    private static class CompletedOneWay<TResult>
    {
        public static readonly Task<TResult> Task = System.Threading.Tasks.Task.FromResult(default(TResult)!);
    }
}
