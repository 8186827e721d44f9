using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.Mqtt.Broker;

/// <summary>The broker's ActivitySource and Meter instruments.</summary>
public sealed class MqttBrokerTelemetry : IDisposable
{
    public const string ActivitySourceName = "CloudEdge.Mqtt.Broker";
    public const string MeterName = "CloudEdge.Mqtt";

    internal static readonly ActivitySource ActivitySource = new(ActivitySourceName);

    private readonly Meter _meter;

    public MqttBrokerTelemetry(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        ActiveConnections = _meter.CreateUpDownCounter<long>("cloudedge.mqtt.connections.active", description: "Open client connections.");
        ConnectionsAccepted = _meter.CreateCounter<long>("cloudedge.mqtt.connections.accepted", description: "CONNECTs accepted.");
        ConnectionsRejected = _meter.CreateCounter<long>("cloudedge.mqtt.connections.rejected", description: "CONNECTs refused, by reason.");
        MessagesReceived = _meter.CreateCounter<long>("cloudedge.mqtt.messages.received", description: "PUBLISH packets received from clients.");
        MessagesSent = _meter.CreateCounter<long>("cloudedge.mqtt.messages.sent", description: "PUBLISH packets sent to clients.");
        MessagesDropped = _meter.CreateCounter<long>("cloudedge.mqtt.messages.dropped", description: "Messages not delivered, by reason.");
        ProtocolErrors = _meter.CreateCounter<long>("cloudedge.mqtt.protocol_errors", description: "Connections closed for a protocol violation, by reason code.");
    }

    public Meter Meter => _meter;
    internal UpDownCounter<long> ActiveConnections { get; }
    internal Counter<long> ConnectionsAccepted { get; }
    internal Counter<long> ConnectionsRejected { get; }
    internal Counter<long> MessagesReceived { get; }
    internal Counter<long> MessagesSent { get; }
    internal Counter<long> MessagesDropped { get; }
    internal Counter<long> ProtocolErrors { get; }

    public void Dispose() => _meter.Dispose();
}
