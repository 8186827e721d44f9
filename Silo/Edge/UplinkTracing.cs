using System.Diagnostics;
using CloudEdge.Grains;
using CloudEdge.Silo.Api;
using CloudEdge.Silo.Hosting;

namespace CloudEdge.Silo.Edge;

/// <summary>
/// The traces of an uplink request (docs/tracing.md). The request itself continues the agent's
/// <c>edge.uplink.batch</c> trace (its <c>traceparent</c> header) into the grain calls; one batch carries items of
/// many traces, so each item with a <c>traceparent</c> also gets an <c>uplink.item {type}</c> span (Consumer, source
/// <c>CloudEdge.Silo</c>) in its own trace, parented by the item's context and linked to the request, covering its
/// device's grain call: an alert's trace goes on from the reading through the Silo.
/// </summary>
internal static class UplinkTracing
{
    /// <summary>Starts one span per traced item; <see cref="Activity.Current"/> stays the request's.</summary>
    public static Activity?[] StartItems(string gatewayId, string deviceId, IReadOnlyList<DeviceUplinkItem> items)
    {
        if (!SiloMetrics.ActivitySource.HasListeners())
        {
            return [];
        }

        var ambient = Activity.Current;
        ActivityLink[]? request = ambient is null ? null : [new ActivityLink(ambient.Context)];
        var spans = new Activity?[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var traceParent = items[i].Summary?.TraceParent ?? items[i].Alert?.TraceParent;
            if (traceParent is null || !ActivityContext.TryParse(traceParent, null, isRemote: true, out var parent))
            {
                continue;
            }

            var span = SiloMetrics.ActivitySource.StartActivity(items[i].Summary is null ? "uplink.item alert" : "uplink.item summary", ActivityKind.Consumer, parent, links: request);
            span?.SetTag("cloudedge.uplink.item.id", items[i].ItemId);
            span?.SetTag("cloudedge.gateway.id", gatewayId);
            span?.SetTag("cloudedge.device.id", deviceId);
            spans[i] = span;
        }

        // Starting a span makes it current; the grain call belongs to the request's trace.
        Activity.Current = ambient;
        return spans;
    }

    /// <summary>Ends the item spans with the grain's answer for each item.</summary>
    public static void StopItems(Activity?[] spans, IReadOnlyList<UplinkOutcome> outcomes)
    {
        for (var i = 0; i < spans.Length; i++)
        {
            if (spans[i] is not { } span)
            {
                continue;
            }

            if (i < outcomes.Count)
            {
                span.SetTag("cloudedge.uplink.item.status", EdgeText.Status(outcomes[i].Status));
                if (outcomes[i].Code is { } code)
                {
                    span.SetTag("cloudedge.uplink.item.code", code);
                }
            }

            Stop(span);
        }
    }

    /// <summary>Ends the item spans of a grain call that failed (the request answers 5xx; the agent resends).</summary>
    public static void FailItems(Activity?[] spans, Exception error)
    {
        foreach (var span in spans)
        {
            if (span is null)
            {
                continue;
            }

            span.SetStatus(ActivityStatusCode.Error, error.GetType().Name);
            Stop(span);
        }
    }

    private static void Stop(Activity span)
    {
        // Stop makes the span's predecessor current; keep whatever the caller had.
        var ambient = Activity.Current;
        span.Stop();
        Activity.Current = ambient;
    }
}
