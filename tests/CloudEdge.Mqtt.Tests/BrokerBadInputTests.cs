using System.Buffers;
using System.Text;
using CloudEdge.Mqtt.Broker;

namespace CloudEdge.Mqtt.Tests;

/// <summary>
/// Malformed packets from a raw socket at every state of a connection: before CONNECT, mid-session and in the
/// middle of QoS 2 handshakes in both directions. Each gets the spec's answer (v5: the reason code in CONNACK or
/// DISCONNECT, then a close; 3.1.1: a plain close), and a bystander in the middle of its own QoS 2 exchange
/// keeps its session and its messages.
/// </summary>
public sealed class BrokerBadInputTests
{
    private const MqttProtocolVersion V5 = MqttProtocolVersion.V500;
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const int MaximumPacketSize = 1024;

    public enum State
    {
        BeforeConnect,
        MidSession,
        Qos2Inbound,
        Qos2Outbound,
    }

    [Theory]
    // Before CONNECT: a v5 CONNECT that names its level gets CONNACK with the reason code (section 4.13).
    [InlineData(State.BeforeConnect, V5, "truncated CONNECT", "10 0A 00 04 4D 51 54 54 05 02 00 3C", MqttReasonCode.MalformedPacket)]
    [InlineData(State.BeforeConnect, V5, "reserved connect flag", "10 0D 00 04 4D 51 54 54 05 03 00 3C 00 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.BeforeConnect, V5, "will QoS 3", "10 0D 00 04 4D 51 54 54 05 1E 00 3C 00 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.BeforeConnect, V5, "property not valid in CONNECT", "10 0F 00 04 4D 51 54 54 05 02 00 3C 02 01 00 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.BeforeConnect, V5, "duplicate session expiry", "10 17 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(State.BeforeConnect, V5, "receive maximum 0", "10 10 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(State.BeforeConnect, V5, "property length past the packet", "10 0D 00 04 4D 51 54 54 05 02 00 3C 7F 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.BeforeConnect, V5, "oversize CONNECT", "10 FF 7F 00 04 4D 51 54 54 05 02 00 3C 00", MqttReasonCode.PacketTooLarge)]
    // 3.1.1 has no reason code for a broken CONNECT, and nothing that is not CONNECT gets an answer.
    [InlineData(State.BeforeConnect, V311, "truncated CONNECT", "10 08 00 04 4D 51 54 54 04 02 00", null)]
    [InlineData(State.BeforeConnect, V311, "reserved connect flag", "10 0C 00 04 4D 51 54 54 04 03 00 3C 00 00", null)]
    [InlineData(State.BeforeConnect, V311, "password without user name", "10 0E 00 04 4D 51 54 54 04 42 00 3C 00 00 00 00", null)]
    [InlineData(State.BeforeConnect, V311, "oversize CONNECT", "10 FF 7F 00 04 4D 51 54 54 04 02 00 3C", null)]
    [InlineData(State.BeforeConnect, V311, "PUBLISH first", "30 05 00 01 61 68 69", null)]
    [InlineData(State.BeforeConnect, V311, "reserved packet type first", "00 00", null)]
    [InlineData(State.BeforeConnect, V311, "remaining length of five bytes", "10 FF FF FF FF 7F", null)]
    // Mid-session.
    [InlineData(State.MidSession, V5, "PUBACK with flags", "42 02 00 01", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "truncated PUBACK", "40 01 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "remaining length of five bytes", "30 FF FF FF FF 7F", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "truncated PUBLISH topic", "30 03 00 05 61", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "session expiry in PUBLISH", "30 09 00 01 61 05 11 00 00 00 01", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "unknown property", "30 05 00 01 61 01 7F", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "SUBSCRIBE without flags", "80 07 00 01 00 00 01 61 01", MqttReasonCode.MalformedPacket)]
    [InlineData(State.MidSession, V5, "SUBSCRIBE without filters", "82 03 00 01 00", MqttReasonCode.ProtocolError)]
    [InlineData(State.MidSession, V5, "packet id 0", "32 06 00 01 61 00 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(State.MidSession, V5, "oversize PUBLISH", "30 FF 7F 00 01 61", MqttReasonCode.PacketTooLarge)]
    [InlineData(State.MidSession, V311, "PUBACK with flags", "42 02 00 01", null)]
    [InlineData(State.MidSession, V311, "truncated PUBLISH topic", "30 03 00 05 61", null)]
    [InlineData(State.MidSession, V311, "oversize PUBLISH", "30 FF 7F 00 01 61", null)]
    [InlineData(State.MidSession, V311, "SUBSCRIBE without filters", "82 02 00 01", null)]
    // The offender has sent PUBLISH QoS 2 with id 7 and received PUBREC 7.
    [InlineData(State.Qos2Inbound, V5, "PUBREL with wrong flags", "60 02 00 07", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Inbound, V5, "truncated PUBREL", "62 01 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Inbound, V5, "PUBREL with property length past the packet", "62 05 00 07 00 09 1F", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Inbound, V5, "PUBREL with a PUBLISH property", "62 06 00 07 00 02 01 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Inbound, V5, "PUBREL with trailing bytes", "62 05 00 07 00 00 FF", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Inbound, V5, "PUBREL with a PUBACK reason code", "62 03 00 07 87", MqttReasonCode.ProtocolError)]
    [InlineData(State.Qos2Inbound, V5, "PUBREL with packet id 0", "62 02 00 00", MqttReasonCode.ProtocolError)]
    [InlineData(State.Qos2Inbound, V5, "oversize PUBREL", "62 FF 7F 00 07", MqttReasonCode.PacketTooLarge)]
    [InlineData(State.Qos2Inbound, V311, "PUBREL with wrong flags", "60 02 00 07", null)]
    [InlineData(State.Qos2Inbound, V311, "PUBREL with a reason code", "62 03 00 07 00", null)]
    // The broker has sent the offender PUBLISH QoS 2 (its id is patched into "00 00" below).
    [InlineData(State.Qos2Outbound, V5, "PUBREC with wrong flags", "52 02 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Outbound, V5, "truncated PUBREC", "50 01 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Outbound, V5, "PUBREC with a bad property", "50 06 00 00 00 02 23 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Outbound, V5, "PUBREC with a PUBREL reason code", "50 03 00 00 92", MqttReasonCode.ProtocolError)]
    [InlineData(State.Qos2Outbound, V5, "PUBCOMP with wrong flags", "72 02 00 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Outbound, V5, "truncated PUBCOMP", "70 01 00", MqttReasonCode.MalformedPacket)]
    [InlineData(State.Qos2Outbound, V5, "oversize PUBCOMP", "70 FF 7F 00 00", MqttReasonCode.PacketTooLarge)]
    [InlineData(State.Qos2Outbound, V311, "PUBREC with wrong flags", "52 02 00 00", null)]
    [InlineData(State.Qos2Outbound, V311, "truncated PUBCOMP", "70 01 00", null)]
    public async Task Malformed_input_gets_the_specified_answer_and_spares_other_sessions(State state, MqttProtocolVersion version, string what, string hex, MqttReasonCode? expected)
    {
        await using var server = await TestBroker.StartAsync(o => o.MaximumPacketSize = MaximumPacketSize);
        var port = server.TcpPort!.Value;
        await using var bystander = await Bystander.StartAsync(port);

        var bytes = Convert.FromHexString(hex.Replace(" ", ""));
        RawClient offender;
        if (state == State.BeforeConnect)
        {
            offender = await RawClient.OpenAsync(port, version);
        }
        else
        {
            offender = await RawClient.ConnectOkAsync(port, "offender", version, cleanStart: false, properties: version == V5 ? new MqttProperties { SessionExpiryInterval = 600 } : null);
            if (state == State.Qos2Inbound)
            {
                await offender.SendAsync(Message("in/offender", "q2", MqttQualityOfService.ExactlyOnce, 7));
                Assert.Equal(7, (await offender.ReceiveAsync<MqttPubRecPacket>()).PacketId);
            }
            else if (state == State.Qos2Outbound)
            {
                await offender.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "out", QoS = MqttQualityOfService.ExactlyOnce }] });
                await offender.ReceiveAsync<MqttSubAckPacket>();
                server.Broker.Publish("out", "q2"u8.ToArray(), MqttQualityOfService.ExactlyOnce);
                var delivered = await offender.ReceiveAsync<MqttPublishPacket>();
                Assert.Equal(MqttQualityOfService.ExactlyOnce, delivered.QoS);
                // Aim the broken packet at the broker's real packet id where the bytes carry one.
                if (bytes.Length >= 4 && bytes[1] < 0x80) (bytes[2], bytes[3]) = ((byte)(delivered.PacketId >> 8), (byte)delivered.PacketId);
            }
        }

        await using (offender)
        {
            await offender.SendRawAsync(bytes);
            var packets = await offender.ReadUntilClosedAsync();
            if (expected is { } code)
            {
                var answer = Assert.Single(packets);
                var actual = state == State.BeforeConnect ? Assert.IsType<MqttConnAckPacket>(answer).ReasonCode : Assert.IsType<MqttDisconnectPacket>(answer).ReasonCode;
                Assert.True(code == actual, $"{what}: expected {code}, got {actual}");
            }
            else
            {
                Assert.True(packets.Count == 0, $"{what}: expected a plain close, got {string.Join(", ", packets.Select(p => p.Type))}");
            }
        }

        await bystander.AssertUnharmedAsync(server);
    }

    [Theory]
    [InlineData(V5)]
    [InlineData(V311)]
    public async Task Wrong_packet_ids_in_a_qos2_handshake_get_answers_and_keep_the_connection(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var bystander = await Bystander.StartAsync(port);
        await using var client = await RawClient.ConnectOkAsync(port, "mixed-up", version);
        await client.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "out", QoS = MqttQualityOfService.ExactlyOnce }] });
        await client.ReceiveAsync<MqttSubAckPacket>();

        // Inbound: PUBREL for an id the broker never received gets PUBCOMP (0x92 on v5); the real one still completes.
        await client.SendAsync(Message("in/x", "q2", MqttQualityOfService.ExactlyOnce, 7));
        Assert.Equal(7, (await client.ReceiveAsync<MqttPubRecPacket>()).PacketId);
        await client.SendAsync(new MqttPubRelPacket { PacketId = 8 });
        var wrongComp = await client.ReceiveAsync<MqttPubCompPacket>();
        Assert.Equal(8, wrongComp.PacketId);
        Assert.Equal(version == V5 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success, wrongComp.ReasonCode);
        await client.SendAsync(new MqttPubRelPacket { PacketId = 7 });
        var comp = await client.ReceiveAsync<MqttPubCompPacket>();
        Assert.Equal((7, MqttReasonCode.Success), (comp.PacketId, comp.ReasonCode));

        // Outbound: PUBREC for an unknown id gets PUBREL (0x92 on v5); a stray PUBCOMP is ignored; the real exchange completes.
        server.Broker.Publish("out", "q2"u8.ToArray(), MqttQualityOfService.ExactlyOnce);
        var delivered = await client.ReceiveAsync<MqttPublishPacket>();
        var stray = (ushort)(delivered.PacketId == 500 ? 501 : 500);
        await client.SendAsync(new MqttPubRecPacket { PacketId = stray });
        var wrongRel = await client.ReceiveAsync<MqttPubRelPacket>();
        Assert.Equal(stray, wrongRel.PacketId);
        Assert.Equal(version == V5 ? MqttReasonCode.PacketIdentifierNotFound : MqttReasonCode.Success, wrongRel.ReasonCode);
        await client.SendAsync(new MqttPubCompPacket { PacketId = stray });
        await client.SendAsync(new MqttPubRecPacket { PacketId = delivered.PacketId });
        Assert.Equal(delivered.PacketId, (await client.ReceiveAsync<MqttPubRelPacket>()).PacketId);
        await client.SendAsync(new MqttPubCompPacket { PacketId = delivered.PacketId });
        await client.SendAsync(MqttPingReqPacket.Instance);
        Assert.IsType<MqttPingRespPacket>(await client.ReceiveAsync());

        await bystander.AssertUnharmedAsync(server, connections: 2);
    }

    private static MqttPublishPacket Message(string topic, string payload, MqttQualityOfService qos, ushort id = 0) =>
        new() { Topic = topic, Payload = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)), QoS = qos, PacketId = id };

    /// <summary>A persistent v5 session subscribed at QoS 1 with its own inbound QoS 2 exchange half done.</summary>
    private sealed class Bystander : IAsyncDisposable
    {
        private readonly RawClient _client;

        private Bystander(RawClient client) => _client = client;

        public static async Task<Bystander> StartAsync(int port)
        {
            var client = await RawClient.ConnectOkAsync(port, "bystander", V5, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 600 });
            await client.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "ok", QoS = MqttQualityOfService.AtLeastOnce }] });
            await client.ReceiveAsync<MqttSubAckPacket>();
            await client.SendAsync(Message("in/bystander", "half done", MqttQualityOfService.ExactlyOnce, 3));
            Assert.Equal(3, (await client.ReceiveAsync<MqttPubRecPacket>()).PacketId);
            return new Bystander(client);
        }

        public async Task AssertUnharmedAsync(MqttServer server, int connections = 1)
        {
            await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == connections, $"{connections} connection(s) left");
            await _client.SendAsync(new MqttPubRelPacket { PacketId = 3 });
            var comp = await _client.ReceiveAsync<MqttPubCompPacket>();
            Assert.Equal((3, MqttReasonCode.Success), (comp.PacketId, comp.ReasonCode));
            server.Broker.Publish("ok", "still here"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
            var message = await _client.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal("still here", Encoding.UTF8.GetString(message.Payload.ToArray()));
            await _client.SendAsync(new MqttPubAckPacket { PacketId = message.PacketId });
        }

        public ValueTask DisposeAsync() => _client.DisposeAsync();
    }
}
