using System.Diagnostics.Metrics;
using CloudEdge.Silo.Hosting;

namespace CloudEdge.Silo.Live;

/// <summary>The live endpoints' instruments, on the silo's meter "CloudEdge.Silo".</summary>
internal sealed class LiveMetrics
{
    private readonly UpDownCounter<long> connections;
    private readonly Counter<long> events;
    private readonly Counter<long> disconnects;

    public LiveMetrics(IMeterFactory meterFactory)
    {
        // The factory hands out one Meter per name and disposes it: the silo's other instruments share it.
        var meter = meterFactory.Create(SiloMetrics.Name);
        connections = meter.CreateUpDownCounter<long>("cloudedge.silo.live.connections", "{connection}", "Open live (Server-Sent Events) connections, by stream namespace.");
        events = meter.CreateCounter<long>("cloudedge.silo.live.events", "{event}", "Events written to live connections, by stream namespace.");
        disconnects = meter.CreateCounter<long>("cloudedge.silo.live.disconnects", "{connection}", "Live connections ended, by reason: client_closed, slow_consumer, server_stopping, failed.");
    }

    public void Opened(string streamNamespace) => connections.Add(1, Tag(streamNamespace));

    public void Closed(string streamNamespace, string reason)
    {
        connections.Add(-1, Tag(streamNamespace));
        disconnects.Add(1, Tag(streamNamespace), new KeyValuePair<string, object?>("reason", reason));
    }

    public void Sent(string streamNamespace, int count) => events.Add(count, Tag(streamNamespace));

    private static KeyValuePair<string, object?> Tag(string streamNamespace) => new("cloudedge.stream.namespace", streamNamespace);
}
