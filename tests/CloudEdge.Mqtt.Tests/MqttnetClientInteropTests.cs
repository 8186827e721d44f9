using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using MQTTnet;
using MQTTnet.Protocol;
using NetMessage = MQTTnet.MqttApplicationMessage;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace CloudEdge.Mqtt.Tests;

/// <summary>
/// MQTTnet 5.2's client (an independent implementation) against our broker: 3.1.1 and 5, QoS 0/1/2, TLS and mTLS,
/// wills, retained messages, user properties, and the MQTT 5 features a peer sees: request/response properties,
/// subscription identifiers, server keep alive, topic aliases both ways and Receive Maximum flow control.
/// </summary>
public sealed class MqttnetClientInteropTests
{
    private static readonly MqttClientFactory Factory = new();

    /// <summary>An MQTTnet client that records what it receives.</summary>
    private sealed class Peer : IAsyncDisposable
    {
        public IMqttClient Client { get; } = Factory.CreateMqttClient();
        public ConcurrentQueue<NetMessage> Received { get; } = new();
        public MqttClientConnectResult? Connected { get; private set; }

        public static async Task<Peer> ConnectAsync(int port, string clientId, NetVersion version = NetVersion.V500, Action<MqttClientOptionsBuilder>? configure = null, Func<MqttApplicationMessageReceivedEventArgs, Task>? onMessage = null)
        {
            var peer = new Peer();
            peer.Client.ApplicationMessageReceivedAsync += e =>
            {
                peer.Received.Enqueue(e.ApplicationMessage);
                return onMessage?.Invoke(e) ?? Task.CompletedTask;
            };
            var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId(clientId).WithProtocolVersion(version).WithTimeout(TestBroker.Timeout);
            configure?.Invoke(options);
            peer.Connected = await peer.Client.ConnectAsync(options.Build());
            Assert.Equal(MqttClientConnectResultCode.Success, peer.Connected.ResultCode);
            return peer;
        }

        public async Task SubscribeAsync(string filter, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.ExactlyOnce, uint subscriptionId = 0)
        {
            var builder = Factory.CreateSubscribeOptionsBuilder().WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(qos));
            if (subscriptionId != 0) builder.WithSubscriptionIdentifier(subscriptionId);
            var result = await Client.SubscribeAsync(builder.Build());
            Assert.True((int)result.Items.Single().ResultCode <= 2, $"SUBSCRIBE {filter}: {result.Items.Single().ResultCode}");
        }

        public async Task<List<NetMessage>> WaitForAsync(int count)
        {
            await TestBroker.WaitUntilAsync(() => Received.Count >= count, $"{count} message(s) received");
            return [.. Received];
        }

        public async ValueTask DisposeAsync()
        {
            if (Client.IsConnected) await Client.DisconnectAsync();
            Client.Dispose();
        }
    }

    private static NetMessage Message(string topic, string payload, MqttQualityOfServiceLevel qos, bool retain = false) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build();

    private static string Text(NetMessage m) => Encoding.UTF8.GetString(m.Payload.ToArray());

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task Qos_0_1_2_round_trip_with_binary_payloads(NetVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await Peer.ConnectAsync(port, "net-sub", version);
        await sub.SubscribeAsync("net/#");
        await using var pub = await Peer.ConnectAsync(port, "net-pub", version);
        byte[] binary = [0x00, 0xFF, 0x10, 0x80, 0x7F];
        foreach (var qos in new[] { MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce })
        {
            var result = await pub.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"net/q{(int)qos}").WithPayload(binary).WithQualityOfServiceLevel(qos).Build());
            Assert.True(result.IsSuccess, $"QoS {qos}: {result.ReasonCode}");
        }
        var received = await sub.WaitForAsync(3);
        Assert.Equal(["net/q0", "net/q1", "net/q2"], received.Select(m => m.Topic));
        Assert.Equal([MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce], received.Select(m => m.QualityOfServiceLevel));
        Assert.All(received, m => Assert.Equal(binary, m.Payload.ToArray()));
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task Retained_messages_reach_a_later_subscriber_and_an_empty_payload_clears_them(NetVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var pub = await Peer.ConnectAsync(port, "net-retain-pub", version);
        await pub.Client.PublishAsync(Message("cfg/a", "A", MqttQualityOfServiceLevel.AtLeastOnce, retain: true));
        await pub.Client.PublishAsync(Message("cfg/b", "B", MqttQualityOfServiceLevel.AtLeastOnce, retain: true));
        await pub.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("cfg/b").WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await TestBroker.WaitUntilAsync(() => server.Broker.RetainedCount == 1, "one retained message left");

        await using var sub = await Peer.ConnectAsync(port, "net-retain-sub", version);
        await sub.SubscribeAsync("cfg/#");
        var retained = Assert.Single(await sub.WaitForAsync(1));
        Assert.Equal(("cfg/a", "A", true), (retained.Topic, Text(retained), retained.Retain));
    }

    [Fact]
    public async Task User_properties_content_type_and_payload_format_pass_through()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await Peer.ConnectAsync(port, "net-props-sub");
        await sub.SubscribeAsync("props");
        await using var pub = await Peer.ConnectAsync(port, "net-props-pub");
        await pub.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("props").WithPayload("{\"v\":1}")
            .WithUserProperty("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"u8.ToArray()).WithUserProperty("site", "plant-1"u8.ToArray())
            .WithContentType("application/json").WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData).Build());
        var m = Assert.Single(await sub.WaitForAsync(1));
        Assert.Equal([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("site", "plant-1")], m.UserProperties.Select(p => (p.Name, Encoding.UTF8.GetString(p.ValueBuffer.Span))));
        Assert.Equal("application/json", m.ContentType);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, m.PayloadFormatIndicator);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task A_will_is_published_when_the_client_goes_away_without_a_normal_disconnect(NetVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var watcher = await Peer.ConnectAsync(port, "net-watcher", version);
        await watcher.SubscribeAsync("wills/#");
        var dying = await Peer.ConnectAsync(port, "net-dying", version, o => o.WithWillTopic("wills/net-dying").WithWillPayload("offline"u8.ToArray()).WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        if (version == NetVersion.V500)
        {
            await dying.Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());
        }
        else
        {
            // 3.1.1 has no "disconnect with will": take the session over, which closes the old connection abnormally.
            await using var successor = await Peer.ConnectAsync(port, "net-dying", version);
        }
        dying.Client.Dispose();
        var will = Assert.Single(await watcher.WaitForAsync(1));
        Assert.Equal(("wills/net-dying", "offline"), (will.Topic, Text(will)));

        // A normal DISCONNECT discards the will: a later control message arrives, the will does not.
        var polite = await Peer.ConnectAsync(port, "net-polite", version, o => o.WithWillTopic("wills/net-polite").WithWillPayload("offline"u8.ToArray()));
        await polite.DisposeAsync();
        server.Broker.Publish("wills/control", "after"u8.ToArray());
        var messages = await watcher.WaitForAsync(2);
        Assert.Equal(["wills/net-dying", "wills/control"], messages.Select(m => m.Topic));
    }

    [Fact]
    public async Task Tls_with_a_password_and_mutual_tls_with_a_client_certificate()
    {
        using var certs = new TestCertificates("net-device");
        await using var server = await TestBroker.StartAsync(
            o =>
            {
                o.AllowAnonymous = false;
                o.Users["ops"] = MqttPasswordHasher.Hash("ops-pw", 1000);
            },
            server: new MqttServerOptions
            {
                TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                TlsEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                ServerCertificate = certs.Server,
                ClientCertificateAuthorities = [certs.Authority],
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            });
        var port = server.TlsPort!.Value;
        void Tls(MqttClientOptionsBuilder o, X509Certificate2? clientCertificate) => o.WithTlsOptions(t =>
        {
            t.UseTls().WithTargetHost("localhost").WithTrustChain([certs.Authority]);
            if (clientCertificate is not null) t.WithClientCertificates([clientCertificate]);
        });

        await using var ops = await Peer.ConnectAsync(port, "net-ops", configure: o =>
        {
            Tls(o, null);
            o.WithCredentials("ops", "ops-pw");
        });
        await ops.SubscribeAsync("devices/#");
        // The certificate authenticates the device: no user name, no password.
        await using var device = await Peer.ConnectAsync(port, "net-device", NetVersion.V311, o => Tls(o, certs.Client));
        var result = await device.Client.PublishAsync(Message("devices/net-device/t", "21.5", MqttQualityOfServiceLevel.AtLeastOnce));
        Assert.True(result.IsSuccess);
        var m = Assert.Single(await ops.WaitForAsync(1));
        Assert.Equal(("devices/net-device/t", "21.5"), (m.Topic, Text(m)));

        // Without a certificate or credentials the TLS listener refuses the client.
        using var anonymous = Factory.CreateMqttClient();
        var refused = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId("net-anon").WithTimeout(TestBroker.Timeout);
        Tls(refused, null);
        var refusal = await anonymous.ConnectAsync(refused.Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, refusal.ResultCode);
    }

    [Fact]
    public async Task Request_response_carries_response_topic_and_correlation_data()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        IMqttClient? responderClient = null;
        await using var responder = await Peer.ConnectAsync(port, "net-responder", onMessage: async e =>
        {
            var request = e.ApplicationMessage;
            await responderClient!.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(request.ResponseTopic).WithPayload("pong:" + Text(request))
                .WithCorrelationData(request.CorrelationData).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        });
        responderClient = responder.Client;
        await responder.SubscribeAsync("svc/ping", MqttQualityOfServiceLevel.AtLeastOnce);

        await using var requester = await Peer.ConnectAsync(port, "net-requester");
        await requester.SubscribeAsync("replies/net-requester", MqttQualityOfServiceLevel.AtLeastOnce);
        byte[] correlation = [1, 2, 3, 250];
        await requester.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("svc/ping").WithPayload("42")
            .WithResponseTopic("replies/net-requester").WithCorrelationData(correlation).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var reply = Assert.Single(await requester.WaitForAsync(1));
        Assert.Equal("pong:42", Text(reply));
        Assert.Equal(correlation, reply.CorrelationData);
        var request = Assert.Single(responder.Received);
        Assert.Equal("replies/net-requester", request.ResponseTopic);
    }

    [Fact]
    public async Task Subscription_identifiers_reach_the_subscriber_for_every_matching_subscription()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await Peer.ConnectAsync(port, "net-sids");
        Assert.True(sub.Connected!.SubscriptionIdentifiersAvailable);
        await sub.SubscribeAsync("plant/+/temp", subscriptionId: 11);
        await sub.SubscribeAsync("plant/#", subscriptionId: 22);
        server.Broker.Publish("plant/7/temp", "20"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        server.Broker.Publish("plant/7/rpm", "900"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        var received = await sub.WaitForAsync(2);
        Assert.Equal([11u, 22u], received.Single(m => m.Topic == "plant/7/temp").SubscriptionIdentifiers.Order());
        Assert.Equal([22u], received.Single(m => m.Topic == "plant/7/rpm").SubscriptionIdentifiers);
    }

    [Fact]
    public async Task The_server_keep_alive_is_announced_and_enforced()
    {
        await using var server = await TestBroker.StartAsync(o => o.ServerKeepAlive = 2);
        await using var peer = await Peer.ConnectAsync(server.TcpPort!.Value, "net-keepalive", configure: o => o.WithKeepAlivePeriod(TimeSpan.FromSeconds(120)));
        Assert.Equal(2, peer.Connected!.ServerKeepAlive);
        // MQTTnet 5.2 keeps pinging at its own 120 s instead of adopting the server's value (MQTT-3.2.2-21), so the
        // broker's keep-alive (1.5 x 2 s) ends the connection with DISCONNECT 0x8D.
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        peer.Client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        var e = await disconnected.Task.WaitAsync(TestBroker.Timeout);
        Assert.Equal(MqttClientDisconnectReason.KeepAliveTimeout, e.Reason);
    }

    [Fact]
    public async Task Topic_aliases_work_both_ways_with_mqttnet()
    {
        const string LongTopic = "factory/line-4/cell-12/spindle/vibration";
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        // The subscriber allows aliases, so the broker assigns one for the long topic and sends the name only once.
        await using var sub = await Peer.ConnectAsync(port, "net-alias-sub", configure: o => o.WithTopicAliasMaximum(16));
        await sub.SubscribeAsync(LongTopic, MqttQualityOfServiceLevel.AtLeastOnce);
        await using var pub = await Peer.ConnectAsync(port, "net-alias-pub");
        Assert.True(pub.Connected!.TopicAliasMaximum > 0);
        // Client to server: the first PUBLISH sets alias 3, the later ones send only the alias.
        await pub.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(LongTopic).WithTopicAlias(3).WithPayload("0").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        for (var i = 1; i < 5; i++)
        {
            var result = await pub.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("").WithTopicAlias(3).WithPayload(i.ToString()).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.True(result.IsSuccess, result.ReasonCode.ToString());
        }
        var received = await sub.WaitForAsync(5);
        // Server to client: the first message carries the topic and the alias, the rest the alias alone. MQTTnet 5.2
        // hands those to the application unresolved (empty topic, TopicAlias set), so the mapping is asserted here.
        var alias = received[0].TopicAlias;
        Assert.True(alias > 0, "the broker assigned an alias");
        Assert.Equal(LongTopic, received[0].Topic);
        Assert.All(received.Skip(1), m => Assert.Equal(("", alias), (m.Topic, m.TopicAlias)));
        Assert.Equal(["0", "1", "2", "3", "4"], received.Select(Text));
    }

    [Fact]
    public async Task The_broker_respects_the_clients_receive_maximum()
    {
        await using var server = await TestBroker.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = new ConcurrentQueue<MqttApplicationMessageReceivedEventArgs>();
        await using var sub = await Peer.ConnectAsync(server.TcpPort!.Value, "net-window", configure: o => o.WithReceiveMaximum(2), onMessage: e =>
        {
            // Hold every acknowledgement: the broker may then have only two messages in flight.
            e.AutoAcknowledge = false;
            held.Enqueue(e);
            return Task.CompletedTask;
        });
        await sub.SubscribeAsync("window", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var control = await Peer.ConnectAsync(server.TcpPort!.Value, "net-window-control");
        await control.SubscribeAsync("window", MqttQualityOfServiceLevel.AtLeastOnce);
        for (var i = 0; i < 5; i++) server.Broker.Publish("window", Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce);
        // Positive control: a subscriber with the default window has all five while the held one has two.
        await control.WaitForAsync(5);
        await sub.WaitForAsync(2);
        Assert.Equal(2, sub.Received.Count);
        while (sub.Received.Count < 5)
        {
            while (held.TryDequeue(out var e)) await e.AcknowledgeAsync(CancellationToken.None);
            await Task.Delay(20);
        }
        Assert.Equal(["0", "1", "2", "3", "4"], sub.Received.Select(Text));
    }
}
