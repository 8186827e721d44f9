using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Mqtt.Tests;

/// <summary>Broker behaviour seen from a raw MQTT peer: every packet the broker sends is asserted.</summary>
public sealed class BrokerProtocolTests
{
    private const MqttProtocolVersion V5 = MqttProtocolVersion.V500;
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private static async Task<MqttSubAckPacket> SubscribeAsync(RawClient client, string filter, MqttQualityOfService qos = MqttQualityOfService.AtLeastOnce,
        Action<MqttSubscription>? options = null, uint? subscriptionId = null, ushort packetId = 1)
    {
        var subscription = new MqttSubscription { TopicFilter = filter, QoS = qos };
        options?.Invoke(subscription);
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketId = packetId,
            Subscriptions = [subscription],
            Properties = subscriptionId is { } id ? new MqttProperties { SubscriptionIdentifiers = [id] } : null,
        });
        return await client.ReceiveAsync<MqttSubAckPacket>();
    }

    private static MqttPublishPacket Message(string topic, string payload, MqttQualityOfService qos = MqttQualityOfService.AtMostOnce, ushort id = 0, bool retain = false, MqttProperties? properties = null) =>
        new() { Topic = topic, Payload = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)), QoS = qos, PacketId = id, Retain = retain, Properties = properties };

    private static string Text(MqttPublishPacket p) => Encoding.UTF8.GetString(p.Payload.ToArray());

    [Fact]
    public async Task Qos2_is_delivered_exactly_once_even_when_the_publisher_resends()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await RawClient.ConnectOkAsync(port, "sub");
        await SubscribeAsync(sub, "q2/#", MqttQualityOfService.ExactlyOnce);
        await using var pub = await RawClient.ConnectOkAsync(port, "pub");

        await pub.SendAsync(Message("q2/a", "once", MqttQualityOfService.ExactlyOnce, 10));
        Assert.Equal(10, (await pub.ReceiveAsync<MqttPubRecPacket>()).PacketId);
        var resend = Message("q2/a", "once", MqttQualityOfService.ExactlyOnce, 10);
        resend.Dup = true;
        await pub.SendAsync(resend);
        Assert.Equal(10, (await pub.ReceiveAsync<MqttPubRecPacket>()).PacketId);
        await pub.SendAsync(new MqttPubRelPacket { PacketId = 10 });
        var comp = await pub.ReceiveAsync<MqttPubCompPacket>();
        Assert.Equal(MqttReasonCode.Success, comp.ReasonCode);

        var delivered = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(MqttQualityOfService.ExactlyOnce, delivered.QoS);
        Assert.Equal("once", Text(delivered));
        await sub.SendAsync(new MqttPubRecPacket { PacketId = delivered.PacketId });
        Assert.Equal(delivered.PacketId, (await sub.ReceiveAsync<MqttPubRelPacket>()).PacketId);
        await sub.SendAsync(new MqttPubCompPacket { PacketId = delivered.PacketId });

        // The id is free again after PUBREL: a new message with the same id is a new message.
        await pub.SendAsync(Message("q2/a", "twice", MqttQualityOfService.ExactlyOnce, 10));
        await pub.ReceiveAsync<MqttPubRecPacket>();
        Assert.Equal("twice", Text(await sub.ReceiveAsync<MqttPublishPacket>()));

        // A PUBREL for an unknown id gets PUBCOMP 0x92 on v5.
        await pub.SendAsync(new MqttPubRelPacket { PacketId = 999 });
        Assert.Equal(MqttReasonCode.PacketIdentifierNotFound, (await pub.ReceiveAsync<MqttPubCompPacket>()).ReasonCode);
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V5)]
    public async Task Unacknowledged_messages_are_resent_with_dup_after_reconnect(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        var durable = version == V5 ? new MqttProperties { SessionExpiryInterval = 300 } : null;
        var sub = await RawClient.ConnectOkAsync(port, "durable", version, cleanStart: false, properties: durable);
        await SubscribeAsync(sub, "work/#");
        await using var pub = await RawClient.ConnectOkAsync(port, "pub", version);
        await pub.SendAsync(Message("work/1", "job", MqttQualityOfService.AtLeastOnce, 1));
        await pub.ReceiveAsync<MqttPubAckPacket>();
        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.False(first.Dup);
        await sub.DisposeAsync(); // no PUBACK, no DISCONNECT

        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 1, "first connection closed");
        await pub.SendAsync(Message("work/2", "queued", MqttQualityOfService.AtLeastOnce, 2));
        await pub.ReceiveAsync<MqttPubAckPacket>();

        var (again, ack) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "durable", ProtocolVersion = version, CleanStart = false, Properties = durable });
        await using (again)
        {
            Assert.True(ack.SessionPresent);
            var resent = await again.ReceiveAsync<MqttPublishPacket>();
            Assert.True(resent.Dup);
            Assert.Equal(first.PacketId, resent.PacketId);
            Assert.Equal("job", Text(resent));
            var queued = await again.ReceiveAsync<MqttPublishPacket>();
            Assert.False(queued.Dup);
            Assert.Equal("queued", Text(queued));
        }
    }

    [Fact]
    public async Task Clean_start_discards_the_previous_session()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        var props = new MqttProperties { SessionExpiryInterval = 300 };
        await using (var c = await RawClient.ConnectOkAsync(port, "c", V5, cleanStart: false, properties: props))
        {
            await SubscribeAsync(c, "x");
            await c.SendAsync(new MqttDisconnectPacket());
        }
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 0, "closed");
        var (again, ack) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "c", CleanStart = true });
        await using (again)
        {
            Assert.False(ack.SessionPresent);
            Assert.False(server.Broker.IsSubscribed("c", "x"));
        }
    }

    [Fact]
    public async Task Sessions_expire_and_delayed_wills_fire_on_the_broker_clock()
    {
        var clock = new ManualTimeProvider();
        await using var server = await TestBroker.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        var port = server.TcpPort!.Value;
        await using var watcher = await RawClient.ConnectOkAsync(port, "watcher");
        await SubscribeAsync(watcher, "wills/#");

        var will = new MqttWillMessage { Topic = "wills/w", Payload = "gone"u8.ToArray(), Properties = new MqttProperties { WillDelayInterval = 30 } };
        var dying = await RawClient.ConnectOkAsync(port, "w", V5, properties: new MqttProperties { SessionExpiryInterval = 60 }, will: will);
        await dying.DisposeAsync();
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 1, "w closed");

        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Null(await watcher.TryReceiveAsync(Quiet));
        clock.Advance(TimeSpan.FromSeconds(2));
        var published = await watcher.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("wills/w", published.Topic);
        Assert.Equal(2, server.Broker.SessionCount);

        clock.Advance(TimeSpan.FromSeconds(30));
        await TestBroker.WaitUntilAsync(() => server.Broker.SessionCount == 1, "session w expired");
    }

    [Fact]
    public async Task Reconnecting_within_the_will_delay_cancels_the_will()
    {
        var clock = new ManualTimeProvider();
        await using var server = await TestBroker.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        var port = server.TcpPort!.Value;
        await using var watcher = await RawClient.ConnectOkAsync(port, "watcher");
        await SubscribeAsync(watcher, "#");

        var will = new MqttWillMessage { Topic = "wills/w", Payload = "gone"u8.ToArray(), Properties = new MqttProperties { WillDelayInterval = 30 } };
        var props = new MqttProperties { SessionExpiryInterval = 600 };
        var first = await RawClient.ConnectOkAsync(port, "w", V5, cleanStart: false, properties: props, will: will);
        await first.DisposeAsync();
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 1, "w closed");
        clock.Advance(TimeSpan.FromSeconds(10));
        await using var second = await RawClient.ConnectOkAsync(port, "w", V5, cleanStart: false, properties: props);
        clock.Advance(TimeSpan.FromSeconds(60));

        server.Broker.Publish("marker", "m"u8.ToArray());
        Assert.Equal("marker", (await watcher.ReceiveAsync<MqttPublishPacket>()).Topic);
    }

    [Fact]
    public async Task Message_expiry_removes_retained_messages_and_counts_down_for_subscribers()
    {
        var clock = new ManualTimeProvider();
        await using var server = await TestBroker.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        var port = server.TcpPort!.Value;
        await using var pub = await RawClient.ConnectOkAsync(port, "pub");
        await pub.SendAsync(Message("exp/a", "short", MqttQualityOfService.AtLeastOnce, 1, retain: true, new MqttProperties { MessageExpiryInterval = 10 }));
        await pub.ReceiveAsync<MqttPubAckPacket>();

        clock.Advance(TimeSpan.FromSeconds(4));
        await using (var early = await RawClient.ConnectOkAsync(port, "early"))
        {
            await SubscribeAsync(early, "exp/#");
            var retained = await early.ReceiveAsync<MqttPublishPacket>();
            Assert.True(retained.Retain);
            Assert.Equal(6u, retained.Properties!.MessageExpiryInterval);
        }
        clock.Advance(TimeSpan.FromSeconds(7));
        await TestBroker.WaitUntilAsync(() => server.Broker.RetainedCount == 0, "retained message expired");
    }

    [Fact]
    public async Task Session_takeover_disconnects_the_old_connection_with_0x8E()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var first = await RawClient.ConnectOkAsync(port, "same");
        await using var second = await RawClient.ConnectOkAsync(port, "same");
        var packets = await first.ReadUntilClosedAsync();
        var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets));
        Assert.Equal(MqttReasonCode.SessionTakenOver, disconnect.ReasonCode);
        await second.SendAsync(MqttPingReqPacket.Instance);
        await second.ReceiveAsync<MqttPingRespPacket>();
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V5)]
    public async Task Keep_alive_is_enforced_at_one_and_a_half_times(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        await using var idle = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "idle", version, keepAlive: 1);
        var started = DateTime.UtcNow;
        var packets = await idle.ReadUntilClosedAsync();
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(1.4));
        if (version == V5) Assert.Equal(MqttReasonCode.KeepAliveTimeout, Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets)).ReasonCode);
        else Assert.Empty(packets);
    }

    [Fact]
    public async Task Pings_keep_a_connection_alive_and_server_keep_alive_is_announced()
    {
        await using var server = await TestBroker.StartAsync(o => o.ServerKeepAlive = 4);
        var (client, ack) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "pinger", KeepAlive = 600 });
        await using (client)
        {
            // 8 s in total, longer than 1.5 x 4 s: the pings are what keeps the connection open.
            Assert.Equal((ushort)4, ack.Properties!.ServerKeepAlive);
            for (var i = 0; i < 8; i++)
            {
                await Task.Delay(1000);
                await client.SendAsync(MqttPingReqPacket.Instance);
                await client.ReceiveAsync<MqttPingRespPacket>();
            }
        }
    }

    [Fact]
    public async Task An_empty_client_id_is_assigned_on_v5_and_rejected_without_clean_session_on_311()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        var (v5, ack) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "" });
        await using (v5)
        {
            Assert.Equal(MqttReasonCode.Success, ack.ReasonCode);
            Assert.StartsWith("auto-", ack.Properties!.AssignedClientIdentifier);
        }
        var (v3, ack3) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "", ProtocolVersion = V311, CleanStart = false });
        await using (v3)
        {
            Assert.Equal(MqttReasonCode.ClientIdentifierNotValid, ack3.ReasonCode);
            Assert.Empty(await v3.ReadUntilClosedAsync());
        }
    }

    [Theory]
    [InlineData(V5, "wildcard topic", "30 05 00 03 61 2F 2B", MqttReasonCode.TopicNameInvalid)]
    [InlineData(V5, "reserved flags", "60 02 00 01", MqttReasonCode.MalformedPacket)]
    [InlineData(V5, "duplicate property", "30 0E 00 01 61 0A 02 00 00 00 01 02 00 00 00 02", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "second CONNECT", "10 0D 00 04 4D 51 54 54 05 02 00 3C 00 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "AUTH without auth method", "F0 00", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "client sends SUBACK", "90 04 00 01 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "subscription id in PUBLISH", "30 06 00 01 61 02 0B 01", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "unknown topic alias", "30 06 00 00 03 23 00 05", MqttReasonCode.ProtocolError)]
    [InlineData(V5, "topic alias above maximum", "30 07 00 01 61 03 23 FF FF", MqttReasonCode.TopicAliasInvalid)]
    [InlineData(V5, "invalid UTF-8", "30 04 00 02 C3 28", MqttReasonCode.MalformedPacket)]
    [InlineData(V5, "No Local on a shared subscription", "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 74 04", MqttReasonCode.ProtocolError)]
    [InlineData(V311, "wildcard topic", "30 05 00 03 61 2F 2B", null)]
    [InlineData(V311, "AUTH packet", "F0 00", null)]
    [InlineData(V311, "QoS 3", "36 05 00 01 61 00 01", null)]
    public async Task Protocol_violations_get_the_specified_answer_and_other_clients_carry_on(MqttProtocolVersion version, string what, string hex, MqttReasonCode? expected)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var bystander = await RawClient.ConnectOkAsync(port, "bystander", V311);
        await SubscribeAsync(bystander, "ok");

        await using var offender = await RawClient.ConnectOkAsync(port, "offender", version);
        await offender.SendRawAsync(Convert.FromHexString(hex.Replace(" ", "")));
        var packets = await offender.ReadUntilClosedAsync();
        if (expected is { } code)
        {
            var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets));
            Assert.True(code == disconnect.ReasonCode, $"{what}: expected {code}, got {disconnect.ReasonCode}");
        }
        else
        {
            Assert.Empty(packets);
        }

        server.Broker.Publish("ok", "still here"u8.ToArray());
        Assert.Equal("still here", Text(await bystander.ReceiveAsync<MqttPublishPacket>()));
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 1, "offender's connection closed");
    }

    [Fact]
    public async Task Packets_above_the_maximum_size_get_0x95()
    {
        await using var server = await TestBroker.StartAsync(o => o.MaximumPacketSize = 1024);
        var (client, ack) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "big" });
        await using (client)
        {
            Assert.Equal(1024u, ack.Properties!.MaximumPacketSize);
            await client.SendAsync(Message("t", new string('x', 2000)));
            var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(await client.ReadUntilClosedAsync()));
            Assert.Equal(MqttReasonCode.PacketTooLarge, disconnect.ReasonCode);
        }
    }

    [Fact]
    public async Task Exceeding_the_servers_receive_maximum_gets_0x93()
    {
        await using var server = await TestBroker.StartAsync(o => o.ReceiveMaximum = 2);
        var (client, ack) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "eager" });
        await using (client)
        {
            Assert.Equal((ushort)2, ack.Properties!.ReceiveMaximum);
            for (ushort id = 1; id <= 2; id++)
            {
                await client.SendAsync(Message("t", "x", MqttQualityOfService.ExactlyOnce, id));
                await client.ReceiveAsync<MqttPubRecPacket>();
            }
            await client.SendAsync(Message("t", "x", MqttQualityOfService.ExactlyOnce, 3));
            var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(await client.ReadUntilClosedAsync()));
            Assert.Equal(MqttReasonCode.ReceiveMaximumExceeded, disconnect.ReasonCode);
        }
    }

    [Fact]
    public async Task The_clients_receive_maximum_limits_messages_in_flight()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var slow = await RawClient.ConnectOkAsync(port, "slow", properties: new MqttProperties { ReceiveMaximum = 2 });
        await SubscribeAsync(slow, "flow");
        for (var i = 0; i < 5; i++) server.Broker.Publish("flow", Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce);

        var a = await slow.ReceiveAsync<MqttPublishPacket>();
        var b = await slow.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(["0", "1"], new[] { Text(a), Text(b) });
        Assert.Null(await slow.TryReceiveAsync(Quiet));
        await slow.SendAsync(new MqttPubAckPacket { PacketId = a.PacketId });
        var c = await slow.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("2", Text(c));
        Assert.Null(await slow.TryReceiveAsync(Quiet));
    }

    [Fact]
    public async Task Messages_above_the_clients_maximum_packet_size_are_dropped_and_counted()
    {
        await using var server = await TestBroker.StartAsync();
        await using var small = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "small", properties: new MqttProperties { MaximumPacketSize = 100 });
        await SubscribeAsync(small, "size/#");
        server.Broker.Publish("size/big", new byte[500]);
        server.Broker.Publish("size/small", "fits"u8.ToArray());
        var received = await small.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("size/small", received.Topic);
        Assert.Equal(1, server.Broker.DroppedMessages);
    }

    [Fact]
    public async Task Topic_aliases_resolve_inbound_and_are_assigned_outbound()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await RawClient.ConnectOkAsync(port, "alias-sub", properties: new MqttProperties { TopicAliasMaximum = 4 });
        await SubscribeAsync(sub, "plant/#", MqttQualityOfService.AtMostOnce);
        await using var pub = await RawClient.ConnectOkAsync(port, "alias-pub");
        await pub.SendAsync(Message("plant/line-1/temperature", "1", properties: new MqttProperties { TopicAlias = 1 }));
        await pub.SendAsync(Message("", "2", properties: new MqttProperties { TopicAlias = 1 }));

        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("plant/line-1/temperature", first.Topic);
        var alias = first.Properties!.TopicAlias!.Value;
        var second = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("", second.Topic);
        Assert.Equal(alias, second.Properties!.TopicAlias);
        Assert.Equal("2", Text(second));
    }

    [Fact]
    public async Task Retain_handling_and_retain_as_published_follow_the_subscription_options()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        server.Broker.Publish("r/a", "old"u8.ToArray(), retain: true);
        await using var c = await RawClient.ConnectOkAsync(port, "c");

        await SubscribeAsync(c, "r/#", options: s => s.RetainHandling = MqttRetainHandling.DoNotSend);
        await SubscribeAsync(c, "r/+", options: s => s.RetainHandling = MqttRetainHandling.SendAtSubscribeIfNew, packetId: 2);
        var retained = await c.ReceiveAsync<MqttPublishPacket>();
        Assert.True(retained.Retain);
        Assert.Equal("old", Text(retained));
        // Same subscription again: not new, so nothing is sent.
        await SubscribeAsync(c, "r/+", options: s => s.RetainHandling = MqttRetainHandling.SendAtSubscribeIfNew, packetId: 3);
        Assert.Null(await c.TryReceiveAsync(Quiet));

        await using var rap = await RawClient.ConnectOkAsync(port, "rap");
        await SubscribeAsync(rap, "live/rap", options: s => { s.RetainAsPublished = true; s.RetainHandling = MqttRetainHandling.DoNotSend; });
        await SubscribeAsync(rap, "live/plain", options: s => s.RetainHandling = MqttRetainHandling.DoNotSend, packetId: 2);
        server.Broker.Publish("live/rap", "1"u8.ToArray(), retain: true);
        server.Broker.Publish("live/plain", "2"u8.ToArray(), retain: true);
        Assert.True((await rap.ReceiveAsync<MqttPublishPacket>()).Retain);
        Assert.False((await rap.ReceiveAsync<MqttPublishPacket>()).Retain);
    }

    [Fact]
    public async Task No_local_keeps_a_clients_own_messages_away_from_it()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var self = await RawClient.ConnectOkAsync(port, "self");
        await using var other = await RawClient.ConnectOkAsync(port, "other");
        await SubscribeAsync(self, "chat", MqttQualityOfService.AtMostOnce, s => s.NoLocal = true);
        await SubscribeAsync(other, "chat", MqttQualityOfService.AtMostOnce);
        await self.SendAsync(Message("chat", "from self"));
        Assert.Equal("from self", Text(await other.ReceiveAsync<MqttPublishPacket>()));
        await other.SendAsync(Message("chat", "from other"));
        Assert.Equal("from other", Text(await other.ReceiveAsync<MqttPublishPacket>()));
        // The first message self receives is the other client's: its own was not sent back.
        Assert.Equal("from other", Text(await self.ReceiveAsync<MqttPublishPacket>()));
    }

    [Fact]
    public async Task A_shared_subscription_delivers_each_message_to_one_member()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var w1 = await RawClient.ConnectOkAsync(port, "w1");
        await using var w2 = await RawClient.ConnectOkAsync(port, "w2", V311);
        await SubscribeAsync(w1, "$share/workers/jobs/#", MqttQualityOfService.AtMostOnce);
        await SubscribeAsync(w2, "$share/workers/jobs/#", MqttQualityOfService.AtMostOnce);
        for (var i = 0; i < 20; i++) server.Broker.Publish("jobs/" + i, Encoding.UTF8.GetBytes(i.ToString()));
        server.Broker.Publish("jobs-done", "x"u8.ToArray());

        var got = new List<string>();
        async Task Drain(RawClient c)
        {
            while (await c.TryReceiveAsync(TimeSpan.FromSeconds(2)) is MqttPublishPacket p)
            {
                lock (got) got.Add(Text(p));
            }
        }
        await Task.WhenAll(Drain(w1), Drain(w2));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i.ToString()).Order(), got.Order());
    }

    [Fact]
    public async Task Overlapping_subscriptions_give_one_message_with_every_identifier()
    {
        await using var server = await TestBroker.StartAsync();
        await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "ids");
        await SubscribeAsync(c, "s/+", MqttQualityOfService.AtMostOnce, subscriptionId: 1);
        await SubscribeAsync(c, "s/#", MqttQualityOfService.AtLeastOnce, subscriptionId: 2, packetId: 2);
        server.Broker.Publish("s/x", "v"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        var p = await c.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(MqttQualityOfService.AtLeastOnce, p.QoS);
        Assert.Equal([1u, 2u], p.Properties!.SubscriptionIdentifiers!.Order());
        Assert.Null(await c.TryReceiveAsync(Quiet));
    }

    [Fact]
    public async Task Dollar_topics_are_not_matched_by_leading_wildcards()
    {
        await using var server = await TestBroker.StartAsync();
        await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "d");
        await SubscribeAsync(c, "#", MqttQualityOfService.AtMostOnce);
        await SubscribeAsync(c, "+/status", MqttQualityOfService.AtMostOnce, packetId: 2);
        await SubscribeAsync(c, "$SYS/#", MqttQualityOfService.AtMostOnce, packetId: 3);
        server.Broker.Publish("$SYS/status", "sys"u8.ToArray());
        var p = await c.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("$SYS/status", p.Topic);
        Assert.Null(await c.TryReceiveAsync(Quiet));
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V5)]
    public async Task Invalid_filters_and_denied_filters_get_failure_codes(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync(o => o.AclRules.Add(new MqttAclRule { Topic = "devices/{clientid}/#" }));
        await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "dev1", version);
        await c.SendAsync(new MqttSubscribePacket
        {
            PacketId = 4,
            Subscriptions =
            [
                new MqttSubscription { TopicFilter = "devices/dev1/#", QoS = MqttQualityOfService.ExactlyOnce },
                new MqttSubscription { TopicFilter = "devices/dev2/#" },
                new MqttSubscription { TopicFilter = "a/#/b" },
                new MqttSubscription { TopicFilter = "#" },
            ],
        });
        var ack = await c.ReceiveAsync<MqttSubAckPacket>();
        Assert.Equal(4, ack.PacketId);
        Assert.Equal(version == V5
            ? [MqttReasonCode.GrantedQoS2, MqttReasonCode.NotAuthorized, MqttReasonCode.TopicFilterInvalid, MqttReasonCode.NotAuthorized]
            : [MqttReasonCode.GrantedQoS2, MqttReasonCode.UnspecifiedError, MqttReasonCode.UnspecifiedError, MqttReasonCode.UnspecifiedError],
            ack.ReasonCodes);

        await c.SendAsync(new MqttUnsubscribePacket { PacketId = 5, TopicFilters = ["devices/dev1/#", "never"] });
        var unsuback = await c.ReceiveAsync<MqttUnsubAckPacket>();
        Assert.Equal(5, unsuback.PacketId);
        if (version == V5) Assert.Equal([MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted], unsuback.ReasonCodes);
    }

    [Theory]
    [InlineData(V311)]
    [InlineData(V5)]
    public async Task A_denied_publish_gets_0x87_on_v5_and_is_counted_never_delivered(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync(o =>
        {
            o.AclRules.Add(new MqttAclRule { Access = MqttAclAccess.Publish, Topic = "devices/{clientid}/#" });
            o.AclRules.Add(new MqttAclRule { ClientId = "ops", Access = MqttAclAccess.Subscribe, Topic = "#" });
        });
        var port = server.TcpPort!.Value;
        await using var ops = await RawClient.ConnectOkAsync(port, "ops");
        await SubscribeAsync(ops, "devices/#");
        await using var dev = await RawClient.ConnectOkAsync(port, "dev1", version);
        await dev.SendAsync(Message("devices/dev2/temp", "spoof", MqttQualityOfService.AtLeastOnce, 1));
        var denied = await dev.ReceiveAsync<MqttPubAckPacket>();
        Assert.Equal(version == V5 ? MqttReasonCode.NotAuthorized : MqttReasonCode.Success, denied.ReasonCode);
        await dev.SendAsync(Message("devices/dev1/temp", "real", MqttQualityOfService.AtLeastOnce, 2));
        Assert.Equal(MqttReasonCode.Success, (await dev.ReceiveAsync<MqttPubAckPacket>()).ReasonCode);
        Assert.Equal("real", Text(await ops.ReceiveAsync<MqttPublishPacket>()));
        Assert.Equal(1, server.Broker.DroppedMessages);
    }

    private sealed class RejectingInterceptor : IMqttPublishInterceptor
    {
        public ValueTask<MqttReasonCode> InterceptAsync(MqttPublishContext context, CancellationToken cancellationToken) =>
            ValueTask.FromResult(context.Payload.Length == 0 ? MqttReasonCode.PayloadFormatInvalid : MqttReasonCode.Success);
    }

    [Fact]
    public async Task An_interceptor_can_reject_with_a_reason_code()
    {
        await using var server = await TestBroker.StartAsync(services: s => s.AddSingleton<IMqttPublishInterceptor, RejectingInterceptor>());
        await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "c");
        await c.SendAsync(Message("t", "", MqttQualityOfService.ExactlyOnce, 1));
        Assert.Equal(MqttReasonCode.PayloadFormatInvalid, (await c.ReceiveAsync<MqttPubRecPacket>()).ReasonCode);
        await c.SendAsync(Message("t", "fine", MqttQualityOfService.AtLeastOnce, 2));
        Assert.Equal(MqttReasonCode.Success, (await c.ReceiveAsync<MqttPubAckPacket>()).ReasonCode);
    }

    [Fact]
    public async Task A_full_session_queue_drops_the_newest_and_counts_it_in_the_meter()
    {
        await using var server = await TestBroker.StartAsync(o => o.MaximumQueuedMessagesPerSession = 5);
        var dropped = new List<(long Value, string? Reason)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == server.Broker.Telemetry.Meter && instrument.Name == "cloudedge.mqtt.messages.dropped") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            lock (dropped) dropped.Add((value, tags.ToArray().FirstOrDefault(t => t.Key == "reason").Value as string));
        });
        listener.Start();

        var port = server.TcpPort!.Value;
        var props = new MqttProperties { SessionExpiryInterval = 300 };
        await using (var offline = await RawClient.ConnectOkAsync(port, "offline", cleanStart: false, properties: props))
        {
            await SubscribeAsync(offline, "q");
        }
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 0, "offline");
        for (var i = 0; i < 8; i++) server.Broker.Publish("q", Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce);
        Assert.Equal(3, server.Broker.DroppedMessages);
        lock (dropped) Assert.Equal(3, dropped.Where(d => d.Reason == "queue_full").Sum(d => d.Value));

        await using var back = await RawClient.ConnectOkAsync(port, "offline", cleanStart: false, properties: props);
        for (var i = 0; i < 5; i++)
        {
            var p = await back.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(i.ToString(), Text(p));
            await back.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
        }
    }

    [Fact]
    public async Task Unsupported_versions_get_the_311_connack_and_non_connect_first_packets_are_closed()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using (var old = await RawClient.OpenAsync(port, V311))
        {
            await old.SendRawAsync(Convert.FromHexString("100E00064D514973647003020000000000"[..32]));
            var packets = await old.ReadUntilClosedAsync();
            var ack = Assert.IsType<MqttConnAckPacket>(Assert.Single(packets));
            Assert.Equal(MqttReasonCode.UnsupportedProtocolVersion, ack.ReasonCode);
        }
        await using (var rude = await RawClient.OpenAsync(port))
        {
            await rude.SendAsync(MqttPingReqPacket.Instance);
            Assert.Empty(await rude.ReadUntilClosedAsync());
        }
    }

    [Fact]
    public async Task A_connection_that_never_sends_connect_is_closed()
    {
        await using var server = await TestBroker.StartAsync(o => o.ConnectTimeout = TimeSpan.FromSeconds(1));
        await using var silent = await RawClient.OpenAsync(server.TcpPort!.Value);
        Assert.Empty(await silent.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Response_information_is_sent_only_to_clients_that_request_it()
    {
        await using var server = await TestBroker.StartAsync(o => o.ResponseInformation = "replies/{clientid}/");
        var port = server.TcpPort!.Value;
        var (asking, ack) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "rr-1", Properties = new MqttProperties { RequestResponseInformation = true } });
        await using (asking) Assert.Equal("replies/rr-1/", ack.Properties!.ResponseInformation);
        var (silent, plain) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "rr-2" });
        await using (silent)
        {
            Assert.Equal(MqttReasonCode.Success, plain.ReasonCode);
            Assert.Null(plain.Properties?.ResponseInformation);
        }
    }

    [Fact]
    public async Task Enhanced_authentication_is_refused_with_0x8C()
    {
        await using var server = await TestBroker.StartAsync();
        var (c, ack) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "scram", Properties = new MqttProperties { AuthenticationMethod = "SCRAM-SHA-1" } });
        await using (c) Assert.Equal(MqttReasonCode.BadAuthenticationMethod, ack.ReasonCode);
    }

    [Fact]
    public async Task Metrics_count_connections_and_messages()
    {
        await using var server = await TestBroker.StartAsync();
        var totals = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == server.Broker.Telemetry.Meter) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (totals) totals[instrument.Name] = totals.GetValueOrDefault(instrument.Name) + value;
        });
        listener.Start();
        await using (var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "m"))
        {
            await SubscribeAsync(c, "m", MqttQualityOfService.AtMostOnce);
            await c.SendAsync(Message("m", "1"));
            await c.ReceiveAsync<MqttPublishPacket>();
            await c.SendAsync(new MqttDisconnectPacket());
        }
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 0, "closed");
        lock (totals)
        {
            Assert.Equal(1, totals["cloudedge.mqtt.connections.accepted"]);
            Assert.Equal(0, totals["cloudedge.mqtt.connections.active"]);
            Assert.Equal(1, totals["cloudedge.mqtt.messages.received"]);
            Assert.Equal(1, totals["cloudedge.mqtt.messages.sent"]);
        }
    }
}

public sealed class BrokerLifecycleTests
{
    [Fact]
    public async Task Stopping_the_server_sends_0x8B_to_v5_clients_and_closes_311_clients()
    {
        var server = await TestBroker.StartAsync();
        await using var v5 = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "v5");
        await using var v3 = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "v3", MqttProtocolVersion.V311);
        var stopping = server.DisposeAsync().AsTask();
        var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(await v5.ReadUntilClosedAsync()));
        Assert.Equal(MqttReasonCode.ServerShuttingDown, disconnect.ReasonCode);
        Assert.Empty(await v3.ReadUntilClosedAsync());
        await stopping;
    }

    [Fact]
    public async Task A_311_client_keeps_its_own_keep_alive_when_the_server_overrides_it_for_v5()
    {
        await using var server = await TestBroker.StartAsync(o => o.ServerKeepAlive = 1);
        await using var v3 = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "v3", MqttProtocolVersion.V311, keepAlive: 60);
        await using var v5 = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "v5", keepAlive: 60);
        // The v5 client was told 1 s and is dropped after 1.5 s of silence; the 3.1.1 client asked for 60 s and stays.
        var packets = await v5.ReadUntilClosedAsync();
        Assert.Equal(MqttReasonCode.KeepAliveTimeout, Assert.IsType<MqttDisconnectPacket>(Assert.Single(packets)).ReasonCode);
        await v3.SendAsync(MqttPingReqPacket.Instance);
        await v3.ReceiveAsync<MqttPingRespPacket>();
    }
}

public sealed class DisconnectTests
{
    [Fact]
    public async Task Disconnect_with_will_message_publishes_the_will_and_a_normal_one_does_not()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var watcher = await RawClient.ConnectOkAsync(port, "watcher");
        await watcher.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "#" }] });
        await watcher.ReceiveAsync<MqttSubAckPacket>();

        var will = new MqttWillMessage { Topic = "wills/a", Payload = "a"u8.ToArray() };
        await using (var a = await RawClient.ConnectOkAsync(port, "a", will: will))
        {
            await a.SendAsync(new MqttDisconnectPacket { ReasonCode = MqttReasonCode.DisconnectWithWillMessage });
            Assert.Empty(await a.ReadUntilClosedAsync());
        }
        Assert.Equal("wills/a", (await watcher.ReceiveAsync<MqttPublishPacket>()).Topic);

        await using (var b = await RawClient.ConnectOkAsync(port, "b", will: new MqttWillMessage { Topic = "wills/b", Payload = "b"u8.ToArray() }))
        {
            await b.SendAsync(new MqttDisconnectPacket());
            Assert.Empty(await b.ReadUntilClosedAsync());
        }
        server.Broker.Publish("marker", "m"u8.ToArray());
        Assert.Equal("marker", (await watcher.ReceiveAsync<MqttPublishPacket>()).Topic);
    }

    [Fact]
    public async Task Disconnect_may_shorten_the_session_expiry_but_not_set_it_after_zero()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using (var c = await RawClient.ConnectOkAsync(port, "keep", cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 600 }))
        {
            await c.SendAsync(new MqttDisconnectPacket { Properties = new MqttProperties { SessionExpiryInterval = 0 } });
            Assert.Empty(await c.ReadUntilClosedAsync());
        }
        await TestBroker.WaitUntilAsync(() => server.Broker.SessionCount == 0, "session ended at disconnect");

        await using var z = await RawClient.ConnectOkAsync(port, "zero");
        await z.SendAsync(new MqttDisconnectPacket { Properties = new MqttProperties { SessionExpiryInterval = 60 } });
        var disconnect = Assert.IsType<MqttDisconnectPacket>(Assert.Single(await z.ReadUntilClosedAsync()));
        Assert.Equal(MqttReasonCode.ProtocolError, disconnect.ReasonCode);
    }
}

public sealed class FireAndForgetTests
{
    [Fact]
    public async Task Packets_sent_just_before_the_client_closes_are_still_processed()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var sub = await RawClient.ConnectOkAsync(port, "sub", MqttProtocolVersion.V311);
        await sub.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "ff/#" }] });
        await sub.ReceiveAsync<MqttSubAckPacket>();

        // CONNECT, PUBLISH and DISCONNECT in one segment, then an immediate close: what mosquitto_pub -q 0 does.
        const int Count = 50;
        for (var i = 0; i < Count; i++)
        {
            var bytes = MqttPacketWriter.ToArray(new MqttConnectPacket { ClientId = "ff" + i, ProtocolVersion = MqttProtocolVersion.V311 }, MqttProtocolVersion.V311)
                .Concat(MqttPacketWriter.ToArray(new MqttPublishPacket { Topic = "ff/" + i, Payload = new System.Buffers.ReadOnlySequence<byte>(new byte[] { (byte)i }) }, MqttProtocolVersion.V311))
                .Concat(MqttPacketWriter.ToArray(new MqttDisconnectPacket(), MqttProtocolVersion.V311))
                .ToArray();
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, port);
            await socket.SendAsync(bytes);
            socket.Close();
        }
        var topics = new HashSet<string>();
        while (topics.Count < Count) topics.Add((await sub.ReceiveAsync<MqttPublishPacket>()).Topic);
        Assert.Equal(Enumerable.Range(0, Count).Select(i => "ff/" + i).Order(), topics.Order());
    }
}

public sealed class QuotaTests
{
    [Fact]
    public async Task Subscriptions_beyond_the_per_session_limit_get_quota_exceeded()
    {
        await using var server = await TestBroker.StartAsync(o => o.MaximumSubscriptionsPerSession = 2);
        await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "greedy");
        await c.SendAsync(new MqttSubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new MqttSubscription { TopicFilter = "a" }, new MqttSubscription { TopicFilter = "b" }, new MqttSubscription { TopicFilter = "c" }, new MqttSubscription { TopicFilter = "a", QoS = MqttQualityOfService.AtLeastOnce }],
        });
        var ack = await c.ReceiveAsync<MqttSubAckPacket>();
        // Replacing an existing subscription is not a new one, so it is still granted.
        Assert.Equal([MqttReasonCode.Success, MqttReasonCode.Success, MqttReasonCode.QuotaExceeded, MqttReasonCode.GrantedQoS1], ack.ReasonCodes);
    }
}
