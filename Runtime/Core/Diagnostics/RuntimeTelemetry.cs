using System.Collections.Immutable;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.Runtime.Diagnostics;

/// <summary>The runtime's ActivitySource and Meter, both named "CloudEdge.Runtime".</summary>
public static class RuntimeTelemetry
{
    public const string Name = "CloudEdge.Runtime";

    public const string TraceParentKey = "traceparent";

    public const string TraceStateKey = "tracestate";

    internal static readonly ActivitySource Source = new(Name);

    /// <summary>Puts the current activity's W3C context into the request context of an outgoing call.</summary>
    internal static ImmutableDictionary<string, object>? Inject(ImmutableDictionary<string, object>? context, Activity activity)
    {
        if (activity.IdFormat != ActivityIdFormat.W3C || activity.Id is not { } id)
        {
            return context;
        }

        var values = context ?? ImmutableDictionary<string, object>.Empty.WithComparers(StringComparer.Ordinal);
        if (values.TryGetValue(TraceParentKey, out var existing) && existing is string text && text == id)
        {
            return values;
        }

        values = values.SetItem(TraceParentKey, id);
        return activity.TraceStateString is { Length: > 0 } state ? values.SetItem(TraceStateKey, state) : values.Remove(TraceStateKey);
    }
}

/// <summary>Starts a client span around each outgoing call when someone listens; the transport injects its context.</summary>
internal sealed class TracingOutgoingFilter : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        using var activity = RuntimeTelemetry.Source.StartActivity($"{context.InterfaceName}/{context.MethodName}", ActivityKind.Client);
        await InvokeInSpanAsync(activity, context);
    }

    /// <summary>Runs the rest of the pipeline inside <paramref name="activity"/> (when sampled), marking it failed on an exception.</summary>
    internal static async Task InvokeInSpanAsync(Activity? activity, IGrainCallContext context)
    {
        if (activity is null)
        {
            await context.Invoke();
            return;
        }

        activity.SetTag("rpc.system", "cloudedge");
        activity.SetTag("rpc.service", context.InterfaceName);
        activity.SetTag("rpc.method", context.MethodName);
        activity.SetTag("cloudedge.grain.id", context.TargetId.ToString());
        try
        {
            await context.Invoke();
        }
        catch (Exception exception)
        {
            activity.SetStatus(ActivityStatusCode.Error, exception.Message);
            activity.SetTag("exception.type", exception.GetType().FullName);
            throw;
        }
    }
}

/// <summary>Continues the caller's trace on the grain side: a server span parented by the call's traceparent.</summary>
internal sealed class TracingIncomingFilter : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (!RuntimeTelemetry.Source.HasListeners())
        {
            await context.Invoke();
            return;
        }

        ActivityContext parent = default;
        if (RequestContext.Get(RuntimeTelemetry.TraceParentKey) is string traceParent)
        {
            ActivityContext.TryParse(traceParent, RequestContext.Get(RuntimeTelemetry.TraceStateKey) as string, isRemote: true, out parent);
        }

        using var activity = RuntimeTelemetry.Source.StartActivity($"{context.InterfaceName}/{context.MethodName}", ActivityKind.Server, parent);
        await TracingOutgoingFilter.InvokeInSpanAsync(activity, context);
    }
}

/// <summary>The runtime's instruments on a Meter named "CloudEdge.Runtime", tagged with the silo name.</summary>
internal sealed class RuntimeInstruments : IDisposable
{
    private readonly Meter meter;
    private readonly bool ownsMeter;

    public RuntimeInstruments(IMeterFactory? meterFactory, string siloName, Func<long> activeActivations)
    {
        var options = new MeterOptions(RuntimeTelemetry.Name) { Tags = [new KeyValuePair<string, object?>("cloudedge.silo", siloName)] };
        ownsMeter = meterFactory is null;
        meter = meterFactory?.Create(options) ?? new Meter(options);
        Calls = meter.CreateCounter<long>("cloudedge.runtime.grain.calls", "{call}", "Grain calls completed.");
        Errors = meter.CreateCounter<long>("cloudedge.runtime.grain.call.errors", "{call}", "Grain calls that ended in an exception.");
        Duration = meter.CreateHistogram<double>("cloudedge.runtime.grain.call.duration", "ms", "Grain call latency as seen by the caller.");
        meter.CreateObservableUpDownCounter("cloudedge.runtime.activations.active", activeActivations, "{activation}", "Active grain activations.");
    }

    public Counter<long> Calls { get; }

    public Counter<long> Errors { get; }

    public Histogram<double> Duration { get; }

    public bool Enabled => Calls.Enabled || Errors.Enabled || Duration.Enabled;

    public void Dispose()
    {
        if (ownsMeter)
        {
            meter.Dispose();
        }
    }
}
