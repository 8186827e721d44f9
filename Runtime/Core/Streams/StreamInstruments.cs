using System.Diagnostics.Metrics;
using CloudEdge.Runtime.Diagnostics;

namespace CloudEdge.Runtime.Streams;

/// <summary>Stream instruments on the runtime's Meter ("CloudEdge.Runtime"), tagged with provider and namespace.</summary>
internal sealed class StreamInstruments : IDisposable
{
    private readonly Meter meter;
    private readonly bool ownsMeter;

    public StreamInstruments(IMeterFactory? meterFactory)
    {
        var options = new MeterOptions(RuntimeTelemetry.Name);
        ownsMeter = meterFactory is null;
        meter = meterFactory?.Create(options) ?? new Meter(options);
        Published = meter.CreateCounter<long>("cloudedge.runtime.stream.events.published", "{event}", "Stream events appended.");
        Delivered = meter.CreateCounter<long>("cloudedge.runtime.stream.events.delivered", "{event}", "Stream events handled by a subscriber.");
        Retried = meter.CreateCounter<long>("cloudedge.runtime.stream.deliveries.retried", "{attempt}", "Failed stream deliveries that were retried.");
        DeadLettered = meter.CreateCounter<long>("cloudedge.runtime.stream.events.dead_lettered", "{event}", "Stream events dead-lettered after every attempt failed.");
    }

    public Counter<long> Published { get; }

    public Counter<long> Delivered { get; }

    public Counter<long> Retried { get; }

    public Counter<long> DeadLettered { get; }

    public void Dispose()
    {
        if (ownsMeter)
        {
            meter.Dispose();
        }
    }
}
