using System.Diagnostics.Metrics;

namespace CloudEdge.Streaming;

/// <summary>The provider's counters on the Meter "CloudEdge.Streaming", tagged with the provider's name.</summary>
internal sealed class StreamingInstruments : IDisposable
{
    public const string MeterName = "CloudEdge.Streaming";

    private readonly Meter meter;
    private readonly bool ownsMeter;

    public StreamingInstruments(IMeterFactory? meterFactory)
    {
        var options = new MeterOptions(MeterName);
        ownsMeter = meterFactory is null;
        meter = meterFactory?.Create(options) ?? new Meter(options);
        Appended = meter.CreateCounter<long>("cloudedge.streaming.events.appended", "{event}", "Events committed to the stream log by publishers.");
        Delivered = meter.CreateCounter<long>("cloudedge.streaming.events.delivered", "{event}", "Events delivered to every subscriber, as checkpointed by the queues' receivers.");
        RetentionDeleted = meter.CreateCounter<long>("cloudedge.streaming.retention.deleted", "{event}", "Delivered events deleted by retention (tag reason: age or count).");
    }

    public Counter<long> Appended { get; }

    public Counter<long> Delivered { get; }

    public Counter<long> RetentionDeleted { get; }

    public void Dispose()
    {
        if (ownsMeter)
        {
            meter.Dispose();
        }
    }
}
