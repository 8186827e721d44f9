using CloudEdge.EdgeAgent;
using CloudEdge.Mqtt;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>The agent composes the broker's SQLite store in its data directory (broker.db beside edge.db).</summary>
public sealed class BrokerStoreTests
{
    [Fact]
    public async Task Retained_messages_of_the_embedded_broker_survive_an_agent_restart()
    {
        using var dir = new TempDirectory();
        string[] args = ["--data-dir", dir.Path, "--gateway-id", "gw-store", "--silo-url", "https://silo.invalid/", "--token", "t", "--mqtt-port", "0", "--EdgeAgent:Ota:Enabled=false"];
        await using (var app = EdgeAgentHost.Build(args))
        {
            await app.StartAsync();
            var broker = app.Services.GetRequiredService<MqttBroker>();
            broker.Publish("devices/sensor-1/config", "{\"rate\":5}"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true);
            await app.StopAsync();
        }
        Assert.True(File.Exists(Path.Combine(dir.Path, "broker.db")), "broker.db is in the agent's data directory");

        await using (var app = EdgeAgentHost.Build(args))
        {
            await app.StartAsync();
            Assert.Equal(1, app.Services.GetRequiredService<MqttBroker>().RetainedCount);
            await app.StopAsync();
        }
    }
}
