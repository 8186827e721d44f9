using System.Text;
using System.Text.Json;

namespace CloudEdge.Mqtt.Tests;

/// <summary>MQTT.js 5 (npm <c>mqtt</c>, pinned in tools/node) against our broker.</summary>
public sealed class MqttJsInteropTests
{
    private static readonly string NodeTools = FindNodeTools();

    private static string FindNodeTools()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudEdge.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Repository root not found."), "tools", "node");
    }

    private static async Task<JsonElement> RunAsync(string scenario, int port, int version)
    {
        Assert.True(Directory.Exists(Path.Combine(NodeTools, "node_modules", "mqtt")), "tools/node/node_modules/mqtt is missing: run tools/install-deps.sh");
        var (exit, stdout, stderr) = await ExternalProcess.RunAsync("node", ["mqttjs-interop.js", scenario, port.ToString(), version.ToString()], TimeSpan.FromSeconds(60), NodeTools);
        Assert.True(exit == 0, $"node exited {exit}: {stderr}");
        return JsonDocument.Parse(stdout).RootElement;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Qos_0_1_2_round_trip_with_binary_payloads(int version)
    {
        await using var server = await TestBroker.StartAsync();
        var result = await RunAsync("roundtrip", server.TcpPort!.Value, version);
        Assert.Equal([2], result.GetProperty("granted").EnumerateArray().Select(e => e.GetInt32()));
        var messages = result.GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(["js/qos0", "js/qos1", "js/qos2"], messages.Select(m => m.GetProperty("topic").GetString()));
        Assert.Equal([0, 1, 2], messages.Select(m => m.GetProperty("qos").GetInt32()));
        Assert.Equal(["000102ff", Convert.ToHexStringLower("one"u8), Convert.ToHexStringLower("two"u8)], messages.Select(m => m.GetProperty("payloadHex").GetString()));
        if (version == 5)
        {
            Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", messages[0].GetProperty("userProperties").GetProperty("traceparent").GetString());
            Assert.All(messages, m => Assert.Equal(7, m.GetProperty("subscriptionIdentifier").GetInt32()));
        }
    }

    [Fact]
    public async Task Topic_aliases_work_in_both_directions()
    {
        await using var server = await TestBroker.StartAsync();
        var result = await RunAsync("topicAlias", server.TcpPort!.Value, 5);
        var messages = result.GetProperty("messages").EnumerateArray().ToArray();
        Assert.All(messages, m => Assert.Equal("alias/very/long/topic/name", m.GetProperty("topic").GetString()));
        Assert.Equal(["a", "b", "c"], messages.Select(m => Encoding.UTF8.GetString(Convert.FromHexString(m.GetProperty("payloadHex").GetString()!))));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task A_persistent_session_keeps_qos1_messages_while_offline(int version)
    {
        await using var server = await TestBroker.StartAsync();
        var result = await RunAsync("persistentSession", server.TcpPort!.Value, version);
        Assert.True(result.GetProperty("sessionPresent").GetBoolean());
        var message = Assert.Single(result.GetProperty("messages").EnumerateArray());
        Assert.Equal("kept while offline", Encoding.UTF8.GetString(Convert.FromHexString(message.GetProperty("payloadHex").GetString()!)));
    }
}
