using System.Diagnostics;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Windows;

namespace CloudEdge.EdgePipeline.Tracing;

/// <summary>
/// The spans a reading's trip makes on the agent (docs/tracing.md): inference under the reading's own traceparent,
/// a summary as a trace of its own linked to its readings, and fresh trace contexts for items without one.
/// </summary>
internal static class ReadingTraces
{
    /// <summary>A new W3C traceparent (not sampled): for an alert whose reading carried none, or a request without a span.</summary>
    public static string NewTraceParent() => $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-00";

    public static ActivityContext ParentOf(SensorReading reading) =>
        reading.TraceParent is { } tp && ActivityContext.TryParse(tp, reading.TraceState, isRemote: true, out var context) ? context : default;

    public static Activity? StartInferenceBatch(string modelVersion, int size)
    {
        var span = EdgeTelemetry.Source.StartActivity("edge.inference.batch");
        span?.SetTag("cloudedge.model.version", modelVersion);
        span?.SetTag("cloudedge.inference.batch_size", size);
        return span;
    }

    /// <summary>One span per scored reading, a child of the reading's traceparent; only made while someone listens.</summary>
    public static void Inference(SensorReading reading, double score, bool anomalous)
    {
        if (!EdgeTelemetry.Source.HasListeners()) return;
        using var span = EdgeTelemetry.Source.StartActivity("edge.inference", ActivityKind.Internal, ParentOf(reading));
        span?.SetTag("cloudedge.device.id", reading.DeviceId);
        span?.SetTag("cloudedge.telemetry.seq", reading.Seq);
        span?.SetTag("cloudedge.anomaly.score", score);
        span?.SetTag("cloudedge.anomaly.detected", anomalous);
    }

    /// <summary>A summary is its own trace, linked to (a bounded number of) the readings it summarises.</summary>
    public static Activity? StartSummary(WindowAccumulator window)
    {
        var links = window.Links.Select(l => ActivityContext.TryParse(l, null, out var c) ? new ActivityLink(c) : default)
            .Where(l => l.Context != default).ToList();
        var span = EdgeTelemetry.Source.StartActivity("edge.window.summary", ActivityKind.Internal, new ActivityContext(), links: links);
        span?.SetTag("cloudedge.device.id", window.DeviceId);
        span?.SetTag("cloudedge.telemetry.kind", SensorKinds.Name(window.Kind));
        span?.SetTag("cloudedge.window.count", window.Count);
        return span;
    }
}
