using System.Collections.Concurrent;

namespace CloudEdge.DeviceSdk.Tests;


/// <summary>A subscriber built on our client that records everything it receives.</summary>
internal sealed class Collector : IAsyncDisposable
{
    private readonly ConcurrentQueue<MqttMessage> _messages = new();

    private Collector(MqttClient client)
    {
        Client = client;
        client.MessageHandler = (m, _) =>
        {
            _messages.Enqueue(m);
            return ValueTask.CompletedTask;
        };
    }

    public MqttClient Client { get; }

    public IReadOnlyList<MqttMessage> Messages => _messages.ToArray();

    public static async Task<Collector> StartAsync(int port, string filter, MqttProtocolVersion version = MqttProtocolVersion.V500,
        MqttQualityOfService qos = MqttQualityOfService.ExactlyOnce, MqttClientOptions? options = null)
    {
        options ??= Clients.Options(port, "collector-" + Guid.NewGuid().ToString("N")[..8], version);
        var client = new MqttClient(options);
        var collector = new Collector(client);
        await client.ConnectAsync();
        var result = await client.SubscribeAsync(filter, qos);
        Assert.Equal((MqttReasonCode)(byte)qos, Assert.Single(result.ReasonCodes));
        return collector;
    }

    public async Task<IReadOnlyList<MqttMessage>> WaitForAsync(int count, TimeSpan? timeout = null)
    {
        await Wait.UntilAsync(() => _messages.Count >= count, $"{count} messages (have {_messages.Count})", timeout);
        return Messages;
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}

internal static class Clients
{
    public static MqttClientOptions Options(int port, string? clientId = null, MqttProtocolVersion version = MqttProtocolVersion.V500) => new()
    {
        Host = "127.0.0.1",
        Tls = MqttTlsOptions.Disabled,
        Port = port,
        ClientId = clientId ?? "dev-" + Guid.NewGuid().ToString("N")[..8],
        ProtocolVersion = version,
    };
}
