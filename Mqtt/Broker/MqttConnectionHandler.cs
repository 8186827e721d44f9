using Microsoft.AspNetCore.Connections;

namespace CloudEdge.Mqtt.Broker;

/// <summary>Kestrel's entry point for MQTT listeners (<c>listenOptions.UseMqtt()</c>).</summary>
public sealed class MqttConnectionHandler(MqttBroker broker) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => broker.RunConnectionAsync(connection);
}
