using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace CloudEdge.DeviceSdk.Tests;

public sealed class ClientRoundTripTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task Connects_and_reports_the_servers_limits(MqttProtocolVersion version)
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var client = new MqttClient(Clients.Options(broker.Port, "connect-test", version));
        var connected = 0;
        client.Connected += (_, _) => Interlocked.Increment(ref connected);

        var result = await client.ConnectAsync();

        Assert.Equal(MqttReasonCode.Success, result.ReasonCode);
        Assert.False(result.SessionPresent);
        Assert.Equal("connect-test", result.ClientId);
        Assert.True(client.IsConnected);
        Assert.Equal(1, connected);
        if (version == MqttProtocolVersion.V500) Assert.Equal(10, result.TopicAliasMaximum);
        else Assert.Equal(0, result.TopicAliasMaximum);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfService.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfService.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfService.ExactlyOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfService.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfService.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfService.ExactlyOnce)]
    public async Task Payloads_arrive_byte_for_byte_at_each_QoS(MqttProtocolVersion version, MqttQualityOfService qos)
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"rt/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, topic + "/#", version);
        await using var publisher = new MqttClient(Clients.Options(broker.Port, version: version));
        await publisher.ConnectAsync();

        // Binary payloads with zeros and every byte value, an empty one, and one bigger than a socket read.
        var payloads = new List<byte[]> { Array.Empty<byte>(), new byte[] { 0, 1, 2, 0, 255 }, Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), RandomNumberGenerator.GetBytes(200_000) };
        for (var i = 0; i < payloads.Count; i++)
        {
            var result = await publisher.PublishAsync($"{topic}/{i}", payloads[i], qos);
            Assert.True(result.IsSuccess, $"publish {i}: {result.ReasonCode}");
        }

        var received = await collector.WaitForAsync(payloads.Count);
        Assert.Equal(payloads.Count, received.Count);
        for (var i = 0; i < payloads.Count; i++)
        {
            var m = Assert.Single(received, m => m.Topic == $"{topic}/{i}");
            Assert.Equal(payloads[i], m.Payload.ToArray());
            Assert.Equal(qos, m.QoS);
            Assert.False(m.Retain);
        }
        var stats = publisher.GetStatistics();
        Assert.Equal(payloads.Count, stats.Completed);
        Assert.Equal(0, stats.InFlight);
    }

    [Fact]
    public async Task V5_properties_and_user_properties_survive_the_broker_in_order()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"props/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, topic);
        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        await publisher.ConnectAsync();

        await publisher.PublishAsync(new MqttMessage
        {
            Topic = topic,
            Payload = "{\"a\":1}"u8.ToArray(),
            QoS = MqttQualityOfService.AtLeastOnce,
            ContentType = "application/json",
            PayloadFormat = MqttPayloadFormat.Utf8,
            ResponseTopic = "replies/x",
            CorrelationData = new byte[] { 9, 8, 7 },
            UserProperties = [new("site", "plant-4"), new("line", "2"), new("site", "plant-5")],
        });

        var m = Assert.Single(await collector.WaitForAsync(1));
        Assert.Equal("application/json", m.ContentType);
        Assert.Equal(MqttPayloadFormat.Utf8, m.PayloadFormat);
        Assert.Equal("replies/x", m.ResponseTopic);
        Assert.Equal(new byte[] { 9, 8, 7 }, m.CorrelationData!.Value.ToArray());
        Assert.Equal([new("site", "plant-4"), new("line", "2"), new("site", "plant-5")], m.UserProperties.Where(p => p.Name is "site" or "line"));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task A_retained_message_reaches_a_later_subscriber_flagged_retained(MqttProtocolVersion version)
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"retained/{Guid.NewGuid():N}";
        await using (var publisher = new MqttClient(Clients.Options(broker.Port, version: version)))
        {
            await publisher.ConnectAsync();
            var result = await publisher.PublishAsync(topic, "last-known"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true);
            Assert.True(result.IsSuccess);
        }

        await using var collector = await Collector.StartAsync(broker.Port, topic, version);
        var m = Assert.Single(await collector.WaitForAsync(1));
        Assert.True(m.Retain);
        Assert.Equal("last-known"u8.ToArray(), m.Payload.ToArray());
    }

    [Fact]
    public async Task V5_subscription_options_no_local_retain_handling_and_retain_as_published_are_honoured()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"options/{Guid.NewGuid():N}";
        await using var client = new MqttClient(Clients.Options(broker.Port));
        var received = new System.Collections.Concurrent.ConcurrentQueue<MqttMessage>();
        client.MessageHandler = (m, _) => { received.Enqueue(m); return ValueTask.CompletedTask; };
        await client.ConnectAsync();
        await client.PublishAsync($"{topic}/retained", "old"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true);

        var result = await client.SubscribeAsync(
        [
            new MqttSubscription { TopicFilter = $"{topic}/own", QoS = MqttQualityOfService.AtLeastOnce, NoLocal = true },
            new MqttSubscription { TopicFilter = $"{topic}/retained", QoS = MqttQualityOfService.AtLeastOnce, RetainHandling = MqttRetainHandling.DoNotSend },
            new MqttSubscription { TopicFilter = $"{topic}/rap", QoS = MqttQualityOfService.AtLeastOnce, RetainAsPublished = true },
            new MqttSubscription { TopicFilter = $"{topic}/marker", QoS = MqttQualityOfService.AtLeastOnce },
        ]);
        Assert.All(result.ReasonCodes, c => Assert.Equal(MqttReasonCode.GrantedQoS1, c));

        await client.PublishAsync($"{topic}/own", "mine"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        await client.PublishAsync($"{topic}/rap", "kept-flag"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true);
        await client.PublishAsync($"{topic}/marker", "m"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        await Wait.UntilAsync(() => received.Any(m => m.Topic.EndsWith("/marker")), "the marker");

        // Not our own publish (No Local), not the old retained one (Retain Handling 2); the live retained publish keeps its flag.
        var topics = received.Select(m => m.Topic).ToList();
        Assert.Equal([$"{topic}/rap", $"{topic}/marker"], topics);
        Assert.True(received.First().Retain);
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"unsub/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, topic);
        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        await publisher.ConnectAsync();
        await publisher.PublishAsync(topic, "1"u8.ToArray());
        await collector.WaitForAsync(1);

        var result = await collector.Client.UnsubscribeAsync([topic]);
        Assert.Equal(MqttReasonCode.Success, Assert.Single(result.ReasonCodes));
        await publisher.PublishAsync(topic, "2"u8.ToArray());
        // A marker on a second subscription proves the broker has processed the publish after the unsubscribe.
        await collector.Client.SubscribeAsync(topic + "/marker");
        await publisher.PublishAsync(topic + "/marker", "m"u8.ToArray());
        var all = await collector.WaitForAsync(2);
        Assert.Equal(["1", "m"], all.Select(m => Encoding.UTF8.GetString(m.Payload.Span)));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task The_will_is_published_when_the_connection_dies_abnormally(MqttProtocolVersion version)
    {
        await using var broker = await Mosquitto.StartAsync();
        var willTopic = $"will/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, willTopic, version);
        await using var proxy = new TcpProxy(broker.Port);
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = proxy.Port,
            ClientId = "will-" + Guid.NewGuid().ToString("N")[..8],
            ProtocolVersion = version,
            Will = new MqttMessage { Topic = willTopic, Payload = "offline"u8.ToArray(), QoS = MqttQualityOfService.AtLeastOnce },
            Reconnect = new MqttReconnectOptions { Enabled = false },
        };
        await using var device = new MqttClient(options);
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, e) => disconnected.TrySetResult(e);
        await device.ConnectAsync();

        proxy.ResetAll();

        var m = Assert.Single(await collector.WaitForAsync(1));
        Assert.Equal("offline"u8.ToArray(), m.Payload.ToArray());
        var e = await disconnected.Task.WaitAsync(Wait.Long);
        Assert.Equal(MqttDisconnectReason.TransportClosed, e.Reason);
        Assert.False(e.WillReconnect);
    }

    [Fact]
    public async Task A_normal_disconnect_suppresses_the_will_and_reason_0x04_sends_it()
    {
        await using var broker = await Mosquitto.StartAsync();
        var willTopic = $"will/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, willTopic + "/#");
        MqttClientOptions WithWill(string name) => new()
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = broker.Port,
            ClientId = name + Guid.NewGuid().ToString("N")[..8],
            Will = new MqttMessage { Topic = $"{willTopic}/{name}", Payload = Encoding.UTF8.GetBytes(name), QoS = MqttQualityOfService.AtLeastOnce },
        };
        await using var quiet = new MqttClient(WithWill("quiet"));
        await using var loud = new MqttClient(WithWill("loud"));
        await quiet.ConnectAsync();
        await loud.ConnectAsync();

        await quiet.DisconnectAsync();
        await loud.DisconnectAsync(MqttReasonCode.DisconnectWithWillMessage);

        var m = Assert.Single(await collector.WaitForAsync(1));
        Assert.Equal($"{willTopic}/loud", m.Topic);
        // The quiet client's DISCONNECT was processed before the loud one's: had it left a will, it would be here.
        Assert.Single(collector.Messages);
    }

    [Fact]
    public async Task Bad_credentials_surface_the_reason_code_and_good_ones_connect()
    {
        await using var broker = await Mosquitto.StartAsync(s => s.Users["sim-0001"] = "s3cret");
        MqttClientOptions With(string? user, string? password, MqttProtocolVersion version) => new()
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = broker.Port,
            ClientId = "sim-0001",
            UserName = user,
            Password = password,
            ProtocolVersion = version,
        };

        await using (var wrong = new MqttClient(With("sim-0001", "wrong", MqttProtocolVersion.V500)))
        {
            var e = await Assert.ThrowsAsync<MqttConnectException>(() => wrong.ConnectAsync());
            // mosquitto 2.0 answers a wrong password with 0x87 Not authorized (not 0x86).
            Assert.Equal(MqttReasonCode.NotAuthorized, e.ReasonCode);
            Assert.Contains("0x87", e.Message);
            Assert.False(wrong.IsConnected);
        }
        await using (var anonymous = new MqttClient(With(null, null, MqttProtocolVersion.V500)))
        {
            var e = await Assert.ThrowsAsync<MqttConnectException>(() => anonymous.ConnectAsync());
            Assert.Equal(MqttReasonCode.NotAuthorized, e.ReasonCode);
        }
        await using (var wrong311 = new MqttClient(With("sim-0001", "wrong", MqttProtocolVersion.V311)))
        {
            var e = await Assert.ThrowsAsync<MqttConnectException>(() => wrong311.ConnectAsync());
            // 3.1.1 return code 5 (not authorized), mapped to its v5 equivalent.
            Assert.Equal(MqttReasonCode.NotAuthorized, e.ReasonCode);
        }
        await using var right = new MqttClient(With("sim-0001", "s3cret", MqttProtocolVersion.V500));
        var ok = await right.ConnectAsync();
        Assert.Equal(MqttReasonCode.Success, ok.ReasonCode);
    }

    [Fact]
    public async Task Publishing_before_connecting_is_a_clear_error()
    {
        await using var client = new MqttClient(Clients.Options(1));
        var e = await Assert.ThrowsAsync<MqttClientException>(() => client.PublishAsync("a/b", "x"u8.ToArray()));
        Assert.Contains("not connected", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => client.PublishAsync("a/+", "x"u8.ToArray()));
    }

    [Fact]
    public async Task The_servers_maximum_packet_size_and_receive_maximum_are_honoured()
    {
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.ExtraLines.Add("max_packet_size 2000");
            s.ExtraLines.Add("max_inflight_messages 3");
        });
        var topic = $"limits/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, topic);
        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        var info = await publisher.ConnectAsync();
        Assert.Equal(2000u, info.MaximumPacketSize);
        Assert.Equal(3, info.ReceiveMaximum);

        var tooBig = await Assert.ThrowsAsync<MqttClientException>(() => publisher.PublishAsync(topic, new byte[5000], MqttQualityOfService.AtLeastOnce));
        Assert.Equal(MqttReasonCode.PacketTooLarge, tooBig.ReasonCode);
        Assert.True(publisher.IsConnected);

        var inFlightPeak = 0;
        var tasks = Enumerable.Range(0, 60).Select(i => publisher.PublishAsync(topic, Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.ExactlyOnce)).ToList();
        while (!tasks.All(t => t.IsCompleted))
        {
            inFlightPeak = Math.Max(inFlightPeak, publisher.GetStatistics().InFlight);
            await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(1));
        }
        Assert.All(await Task.WhenAll(tasks), r => Assert.True(r.IsSuccess));
        Assert.InRange(inFlightPeak, 0, 3);
        var received = await collector.WaitForAsync(60);
        Assert.Equal(Enumerable.Range(0, 60).Select(i => i.ToString()), received.Select(m => Encoding.UTF8.GetString(m.Payload.Span)));
        Assert.True(publisher.IsConnected);
    }

    [Fact]
    public async Task Publishes_beyond_the_servers_maximum_QoS_or_retain_support_are_refused_locally()
    {
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.ExtraLines.Add("max_qos 1");
            s.ExtraLines.Add("retain_available false");
        });
        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        var info = await publisher.ConnectAsync();
        Assert.Equal(MqttQualityOfService.AtLeastOnce, info.MaximumQoS);
        Assert.False(info.RetainAvailable);

        var qos = await Assert.ThrowsAsync<MqttClientException>(() => publisher.PublishAsync("limits/qos", "x"u8.ToArray(), MqttQualityOfService.ExactlyOnce));
        Assert.Equal(MqttReasonCode.QoSNotSupported, qos.ReasonCode);
        var retain = await Assert.ThrowsAsync<MqttClientException>(() => publisher.PublishAsync("limits/retain", "x"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true));
        Assert.Equal(MqttReasonCode.RetainNotSupported, retain.ReasonCode);
        Assert.True((await publisher.PublishAsync("limits/ok", "x"u8.ToArray(), MqttQualityOfService.AtLeastOnce)).IsSuccess);
        Assert.Equal(2, publisher.GetStatistics().Failed);
    }

    [Fact]
    public async Task With_topic_aliases_offered_by_the_server_every_topic_arrives_intact()
    {
        await using var broker = await Mosquitto.StartAsync(s => s.ExtraLines.Add("max_topic_alias 2"));
        var prefix = $"alias/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, prefix + "/#");
        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        var info = await publisher.ConnectAsync();
        Assert.Equal(2, info.TopicAliasMaximum);

        // Three topics with two aliases: the third goes out in full every time.
        for (var round = 0; round < 3; round++)
        {
            for (var t = 0; t < 3; t++) await publisher.PublishAsync($"{prefix}/{t}", Encoding.UTF8.GetBytes($"{round}"), MqttQualityOfService.AtLeastOnce);
        }
        var received = await collector.WaitForAsync(9);
        for (var t = 0; t < 3; t++) Assert.Equal(["0", "1", "2"], received.Where(m => m.Topic == $"{prefix}/{t}").Select(m => Encoding.UTF8.GetString(m.Payload.Span)));
    }
}
