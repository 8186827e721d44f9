using System.Buffers;
using System.Text;
using CloudEdge.Mqtt;
using Wire = CloudEdge.Mqtt;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>Packet-level behaviour of the SDK (on MQTTnet) against a scripted peer over loopback TCP.</summary>
public sealed class ProtocolFlowTests
{
    private static MqttClientOptions Options(int port, TimeSpan? keepAlive = null) => new()
    {
        Host = "127.0.0.1",
        Tls = MqttTlsOptions.Disabled,
        Port = port,
        ClientId = "flow-test",
        CleanStart = false,
        SessionExpiryInterval = 600,
        KeepAlive = keepAlive ?? TimeSpan.FromSeconds(60),
        Reconnect = new MqttReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(50), MaximumDelay = TimeSpan.FromMilliseconds(200) },
    };

    [Fact]
    public async Task After_a_reconnect_unacknowledged_QoS1_and_QoS2_past_PUBREC_are_published_again_and_complete_on_the_new_link()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var connecting = client.ConnectAsync();
        var first = await broker.AcceptAsync();
        var connect = await first.HandshakeAsync();
        Assert.False(connect.CleanStart);
        Assert.Equal(600u, connect.Properties!.SessionExpiryInterval);
        await connecting;

        // A QoS 1 publish in flight and a QoS 2 one queued behind it (QoS 2 goes alone, see the SDK docs) when the link dies.
        var qos1 = client.PublishAsync("flow/a", "a"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        var qos2 = client.PublishAsync("flow/b", "b"u8.ToArray(), MqttQualityOfService.ExactlyOnce);
        var a = await first.ReadAsync<MqttPublishPacket>();
        Assert.False(a.Dup);
        first.Abort();
        first.Dispose();

        // MQTTnet keeps no in-flight state across connections: the SDK publishes "a" again, ahead of "b".
        var second = await broker.AcceptAsync();
        Assert.False((await second.HandshakeAsync(sessionPresent: true)).CleanStart);
        var again = await second.ReadAsync<MqttPublishPacket>();
        Assert.Equal(("flow/a", "a"), (again.Topic, Encoding.UTF8.GetString(again.Payload.FirstSpan)));
        Assert.False(qos1.IsCompleted);
        await second.SendAsync(new MqttPubAckPacket { PacketId = again.PacketId });
        Assert.True((await qos1.WaitAsync(Wait.Long)).IsSuccess);

        // QoS 2 past PUBREC when the link dies: the new link carries it as a new PUBLISH (at least once).
        var b = await second.ReadAsync<MqttPublishPacket>();
        Assert.Equal(Wire.MqttQualityOfService.ExactlyOnce, b.QoS);
        await second.SendAsync(new MqttPubRecPacket { PacketId = b.PacketId });
        Assert.Equal(b.PacketId, (await second.ReadAsync<MqttPubRelPacket>()).PacketId);
        second.Abort();
        second.Dispose();

        using var third = await broker.AcceptAsync();
        await third.HandshakeAsync(sessionPresent: true);
        var bAgain = await third.ReadAsync<MqttPublishPacket>();
        Assert.Equal(("flow/b", "b", Wire.MqttQualityOfService.ExactlyOnce), (bAgain.Topic, Encoding.UTF8.GetString(bAgain.Payload.FirstSpan), bAgain.QoS));
        Assert.False(qos2.IsCompleted);
        await third.SendAsync(new MqttPubRecPacket { PacketId = bAgain.PacketId });
        Assert.Equal(bAgain.PacketId, (await third.ReadAsync<MqttPubRelPacket>()).PacketId);
        await third.SendAsync(new MqttPubCompPacket { PacketId = bAgain.PacketId });
        Assert.True((await qos2.WaitAsync(Wait.Long)).IsSuccess);
        Assert.Equal(2, client.GetStatistics().Resent);
    }

    [Fact]
    public async Task Packets_that_arrive_in_the_same_segment_as_CONNACK_are_delivered()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var delivered = new TaskCompletionSource<MqttMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.MessageHandler = (m, _) => { delivered.TrySetResult(m); return ValueTask.CompletedTask; };
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        await session.ReadAsync<MqttConnectPacket>();
        var bytes = MqttPacketWriter.ToArray(new MqttConnAckPacket { SessionPresent = true }, Wire.MqttProtocolVersion.V500)
            .Concat(MqttPacketWriter.ToArray(new MqttPublishPacket { Topic = "queued/while/away", QoS = Wire.MqttQualityOfService.AtLeastOnce, PacketId = 3, Payload = new("q"u8.ToArray()) }, Wire.MqttProtocolVersion.V500))
            .ToArray();
        await session.SendRawAsync(bytes);
        Assert.True((await connecting).SessionPresent);
        Assert.Equal("queued/while/away", (await delivered.Task.WaitAsync(Wait.Long)).Topic);
        Assert.Equal(3, (await session.ReadAsync<MqttPubAckPacket>()).PacketId);
    }

    [Fact]
    public async Task The_servers_receive_maximum_bounds_what_is_unacknowledged()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        await session.HandshakeAsync(properties: new MqttProperties { ReceiveMaximum = 2 });
        await connecting;

        var tasks = Enumerable.Range(1, 5).Select(i => client.PublishAsync("flow/rm", Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce)).ToList();
        var p1 = await session.ReadAsync<MqttPublishPacket>();
        var p2 = await session.ReadAsync<MqttPublishPacket>();
        Assert.Equal((2, 3), (client.GetStatistics().InFlight, client.GetStatistics().Queued));

        await session.SendAsync(new MqttPubAckPacket { PacketId = p1.PacketId });
        var p3 = await session.ReadAsync<MqttPublishPacket>();
        Assert.Equal("3", Encoding.UTF8.GetString(p3.Payload.FirstSpan));
        Assert.Equal((2, 2), (client.GetStatistics().InFlight, client.GetStatistics().Queued));
        foreach (var id in new[] { p2.PacketId, p3.PacketId }) await session.SendAsync(new MqttPubAckPacket { PacketId = id });
        var p4 = await session.ReadAsync<MqttPublishPacket>();
        var p5 = await session.ReadAsync<MqttPublishPacket>();
        foreach (var id in new[] { p4.PacketId, p5.PacketId }) await session.SendAsync(new MqttPubAckPacket { PacketId = id });
        Assert.All(await Task.WhenAll(tasks).WaitAsync(Wait.Long), r => Assert.True(r.IsSuccess));
        Assert.Equal(["1", "2", "3", "4", "5"], new[] { p1, p2, p3, p4, p5 }.Select(p => Encoding.UTF8.GetString(p.Payload.FirstSpan)));
    }

    [Fact]
    public async Task A_duplicate_QoS2_delivery_reaches_the_handler_once_and_the_flow_completes()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var delivered = new List<string>();
        client.MessageHandler = (m, _) => { lock (delivered) delivered.Add(Encoding.UTF8.GetString(m.Payload.Span)); return ValueTask.CompletedTask; };
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        await session.HandshakeAsync();
        await connecting;

        var publish = new MqttPublishPacket { Topic = "cmd/x", QoS = Wire.MqttQualityOfService.ExactlyOnce, PacketId = 7, Payload = new("once"u8.ToArray()) };
        await session.SendAsync(publish);
        Assert.Equal(7, (await session.ReadAsync<MqttPubRecPacket>()).PacketId);
        publish.Dup = true;
        await session.SendAsync(publish);
        Assert.Equal(7, (await session.ReadAsync<MqttPubRecPacket>()).PacketId);
        await session.SendAsync(new MqttPubRelPacket { PacketId = 7 });
        var comp = await session.ReadAsync<MqttPubCompPacket>();
        Assert.Equal(((ushort)7, Wire.MqttReasonCode.Success), (comp.PacketId, comp.ReasonCode));

        // A later message with the same id is new again.
        publish.Dup = false;
        publish.Payload = new("again"u8.ToArray());
        await session.SendAsync(publish);
        await session.ReadAsync<MqttPubRecPacket>();
        await Wait.UntilAsync(() => { lock (delivered) return delivered.Count == 2; }, "two deliveries");
        lock (delivered) Assert.Equal(["once", "again"], delivered);
    }

    [Fact]
    public async Task A_server_DISCONNECT_is_reported_with_its_reason_code_and_string()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, e) => disconnected.TrySetResult(e);
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        await session.HandshakeAsync();
        await connecting;

        await session.SendAsync(new MqttDisconnectPacket { ReasonCode = Wire.MqttReasonCode.ServerShuttingDown, Properties = new MqttProperties { ReasonString = "maintenance" } });
        var e = await disconnected.Task.WaitAsync(Wait.Long);
        Assert.Equal(MqttDisconnectReason.ServerDisconnected, e.Reason);
        Assert.Equal(MqttReasonCode.ServerShuttingDown, e.ReasonCode);
        Assert.Equal("maintenance", e.ReasonString);
        Assert.True(e.WillReconnect);
        // And it comes back: the next connection is accepted and handshaken.
        using var again = await broker.AcceptAsync();
        await again.HandshakeAsync();
        await Wait.UntilAsync(() => client.IsConnected, "reconnected");
    }

    [Fact]
    public async Task A_malformed_packet_from_the_server_gets_DISCONNECT_0x81_and_is_reported_as_a_protocol_error()
    {
        await using var broker = new ScriptedBroker();
        await using var client = new MqttClient(Options(broker.Port));
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, e) => disconnected.TrySetResult(e);
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        await session.HandshakeAsync();
        await connecting;

        // PUBLISH with QoS 3 in its fixed header.
        await session.SendRawAsync([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]);
        var disconnect = await session.ReadAsync<MqttDisconnectPacket>();
        Assert.Equal(Wire.MqttReasonCode.MalformedPacket, disconnect.ReasonCode);
        var e = await disconnected.Task.WaitAsync(Wait.Long);
        Assert.Equal(MqttDisconnectReason.ProtocolError, e.Reason);
        Assert.Equal(MqttReasonCode.MalformedPacket, e.ReasonCode);
        Assert.Equal(MqttReasonCode.MalformedPacket, Assert.IsType<MqttClientException>(e.Exception).ReasonCode);
    }

    [Fact]
    public async Task Keep_alive_pings_flow_while_idle_and_the_servers_keep_alive_wins()
    {
        await using var broker = new ScriptedBroker();
        var time = new ManualTimeProvider();
        await using var client = new MqttClient(Options(broker.Port, TimeSpan.FromSeconds(60)), time);
        var connecting = client.ConnectAsync();
        using var session = await broker.AcceptAsync();
        var connect = await session.HandshakeAsync(properties: new MqttProperties { ServerKeepAlive = 4 });
        Assert.Equal(60, connect.KeepAlive);
        var info = await connecting;
        Assert.Equal(TimeSpan.FromSeconds(4), info.KeepAlive);

        // Keep-alive 4 s: tick 0.5 s, a PINGREQ once the server has been silent for 2 s; answering keeps it alive.
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 4; i++)
            {
                await Wait.UntilAsync(() => time.ActiveTimerCount == 1, "the keep-alive timer");
                time.Advance(TimeSpan.FromMilliseconds(500));
            }
            var heard = client.LastHeardFrom;
            await session.ReadAsync<MqttPingReqPacket>();
            await session.SendAsync(MqttPingRespPacket.Instance);
            // MQTTnet completes the ping on its own threads: the manual clock must not run ahead of it.
            await Wait.UntilAsync(() => client.LastHeardFrom > heard, "the PINGRESP taken into account");
            await Wait.UntilAsync(() => time.ActiveTimerCount == 1, "the keep-alive timer");
        }
        Assert.True(client.IsConnected);
    }
}
