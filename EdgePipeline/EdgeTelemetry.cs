using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.EdgePipeline;

/// <summary>The agent's spans and instruments: ActivitySource and Meter "CloudEdge.EdgeAgent".</summary>
public sealed class EdgeTelemetry : IDisposable
{
    public const string Name = "CloudEdge.EdgeAgent";

    internal static readonly ActivitySource Source = new(Name);

    private readonly Meter _meter;

    public EdgeTelemetry(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        ReadingsAccepted = _meter.CreateCounter<long>("cloudedge.edge.readings.accepted", description: "Readings journaled and handed to the pipeline.");
        ReadingsRejected = _meter.CreateCounter<long>("cloudedge.edge.readings.rejected", description: "Telemetry refused at ingest (tag reason).");
        ReadingsDuplicate = _meter.CreateCounter<long>("cloudedge.edge.readings.duplicate", description: "Readings seen before (same device, seq and ts), acknowledged and not processed again.");
        ReadingsDropped = _meter.CreateCounter<long>("cloudedge.edge.readings.dropped", description: "Readings lost to back-pressure (tag reason).");
        Alerts = _meter.CreateCounter<long>("cloudedge.edge.alerts", description: "Anomaly alerts written to the outbox.");
        Summaries = _meter.CreateCounter<long>("cloudedge.edge.summaries", description: "Window summaries written to the outbox.");
        OutboxDropped = _meter.CreateCounter<long>("cloudedge.edge.outbox.dropped", description: "Outbox items dropped by the bounds policy (tags type, reason).");
        DeadLettered = _meter.CreateCounter<long>("cloudedge.edge.outbox.dead_lettered", description: "Items the Silo rejected, moved to the dead-letter table (tag code).");
        UplinkItems = _meter.CreateCounter<long>("cloudedge.edge.uplink.items", description: "Items acknowledged by the Silo (tag status).");
        UplinkRequests = _meter.CreateCounter<long>("cloudedge.edge.uplink.requests", description: "Uplink batches sent (tag outcome).");
        InferenceBatch = _meter.CreateHistogram<int>("cloudedge.edge.inference.batch_size", description: "Readings scored per model run.");
        InferenceDuration = _meter.CreateHistogram<double>("cloudedge.edge.inference.duration", "s", "Time ONNX Runtime took to score one batch (measured only while someone listens).");
        OtaUpdates = _meter.CreateCounter<long>("cloudedge.edge.ota.updates", description: "Model updates attempted (tag outcome).");
    }

    internal Counter<long> ReadingsAccepted { get; }
    internal Counter<long> ReadingsRejected { get; }
    internal Counter<long> ReadingsDuplicate { get; }
    internal Counter<long> ReadingsDropped { get; }
    internal Counter<long> Alerts { get; }
    internal Counter<long> Summaries { get; }
    internal Counter<long> OutboxDropped { get; }
    internal Counter<long> DeadLettered { get; }
    internal Counter<long> UplinkItems { get; }
    internal Counter<long> UplinkRequests { get; }
    internal Histogram<int> InferenceBatch { get; }
    internal Histogram<double> InferenceDuration { get; }
    internal Counter<long> OtaUpdates { get; }

    internal Meter Meter => _meter;

    public void Dispose() => _meter.Dispose();
}
