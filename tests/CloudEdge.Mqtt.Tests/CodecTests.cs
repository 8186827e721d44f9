using System.Buffers;
using System.Text;

namespace CloudEdge.Mqtt.Tests;

public sealed class CodecTests
{
    private static readonly MqttProtocolVersion[] Versions = [MqttProtocolVersion.V311, MqttProtocolVersion.V500];

    public static TheoryData<string, MqttProtocolVersion> AllPackets()
    {
        var data = new TheoryData<string, MqttProtocolVersion>();
        foreach (var version in Versions)
        {
            foreach (var name in SamplePackets(version).Keys) data.Add(name, version);
        }
        return data;
    }

    private static Dictionary<string, MqttPacket> SamplePackets(MqttProtocolVersion version)
    {
        var v5 = version == MqttProtocolVersion.V500;
        var packets = new Dictionary<string, MqttPacket>
        {
            ["connect-minimal"] = new MqttConnectPacket { ProtocolVersion = version, ClientId = "c1", KeepAlive = 60 },
            ["connect-full"] = new MqttConnectPacket
            {
                ProtocolVersion = version,
                ClientId = "device-ü",
                CleanStart = false,
                KeepAlive = 30,
                UserName = "user",
                Password = new byte[] { 1, 2, 0, 255 },
                Will = new MqttWillMessage
                {
                    Topic = "devices/d1/status",
                    Payload = "offline"u8.ToArray(),
                    QoS = MqttQualityOfService.AtLeastOnce,
                    Retain = true,
                    Properties = v5 ? new MqttProperties
                    {
                        WillDelayInterval = 5,
                        MessageExpiryInterval = 60,
                        PayloadFormatIndicator = MqttPayloadFormat.Utf8,
                        ContentType = "text/plain",
                        ResponseTopic = "r/t",
                        CorrelationData = new byte[] { 9, 8 },
                    }.AddUserProperty("k", "v") : null,
                },
                Properties = v5 ? new MqttProperties
                {
                    SessionExpiryInterval = 3600,
                    ReceiveMaximum = 20,
                    MaximumPacketSize = 4096,
                    TopicAliasMaximum = 10,
                    RequestResponseInformation = true,
                    RequestProblemInformation = false,
                }.AddUserProperty("a", "1").AddUserProperty("a", "2") : null,
            },
            ["connack"] = new MqttConnAckPacket
            {
                SessionPresent = true,
                ReasonCode = MqttReasonCode.Success,
                Properties = v5 ? new MqttProperties
                {
                    AssignedClientIdentifier = "auto-1",
                    ServerKeepAlive = 10,
                    ReceiveMaximum = 100,
                    TopicAliasMaximum = 5,
                    MaximumQoS = MqttQualityOfService.AtLeastOnce,
                    RetainAvailable = true,
                    MaximumPacketSize = 1000,
                    WildcardSubscriptionAvailable = true,
                    SubscriptionIdentifiersAvailable = true,
                    SharedSubscriptionAvailable = false,
                    ResponseInformation = "resp",
                    ServerReference = "other",
                    ReasonString = "ok",
                    AuthenticationMethod = "m",
                    AuthenticationData = new byte[] { 1 },
                    SessionExpiryInterval = 10,
                } : null,
            },
            ["connack-refused"] = new MqttConnAckPacket { ReasonCode = MqttReasonCode.BadUserNameOrPassword },
            ["publish-qos0"] = new MqttPublishPacket { Topic = "a/b", Payload = new ReadOnlySequence<byte>("hello"u8.ToArray()) },
            ["publish-qos1-retain"] = new MqttPublishPacket { Topic = "a/b", QoS = MqttQualityOfService.AtLeastOnce, PacketId = 1, Retain = true, Dup = true, Payload = new ReadOnlySequence<byte>(new byte[300]) },
            ["publish-qos2-props"] = new MqttPublishPacket
            {
                Topic = "a/b/c",
                QoS = MqttQualityOfService.ExactlyOnce,
                PacketId = 65535,
                Payload = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"t\":21.5}")),
                Properties = v5 ? new MqttProperties
                {
                    PayloadFormatIndicator = MqttPayloadFormat.Utf8,
                    MessageExpiryInterval = 120,
                    TopicAlias = 3,
                    ResponseTopic = "reply/here",
                    CorrelationData = new byte[] { 1, 2, 3 },
                    ContentType = "application/json",
                    SubscriptionIdentifiers = [1, 268_435_455],
                }.AddUserProperty("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") : null,
            },
            ["puback"] = new MqttPubAckPacket { PacketId = 7 },
            ["pubrec"] = new MqttPubRecPacket { PacketId = 8 },
            ["pubrel"] = new MqttPubRelPacket { PacketId = 9 },
            ["pubcomp"] = new MqttPubCompPacket { PacketId = 10 },
            ["subscribe"] = new MqttSubscribePacket
            {
                PacketId = 11,
                Subscriptions =
                [
                    new MqttSubscription { TopicFilter = "a/+/c", QoS = MqttQualityOfService.ExactlyOnce },
                    new MqttSubscription { TopicFilter = "#", QoS = MqttQualityOfService.AtMostOnce, NoLocal = v5, RetainAsPublished = v5, RetainHandling = v5 ? MqttRetainHandling.DoNotSend : 0 },
                ],
                Properties = v5 ? new MqttProperties { SubscriptionIdentifiers = [42] }.AddUserProperty("x", "y") : null,
            },
            ["suback"] = new MqttSubAckPacket { PacketId = 11, ReasonCodes = [MqttReasonCode.GrantedQoS2, MqttReasonCode.Success, MqttReasonCode.UnspecifiedError] },
            ["unsubscribe"] = new MqttUnsubscribePacket { PacketId = 12, TopicFilters = ["a/+/c", "#"] },
            ["unsuback"] = new MqttUnsubAckPacket { PacketId = 12, ReasonCodes = v5 ? [MqttReasonCode.Success, MqttReasonCode.NoSubscriptionExisted] : [] },
            ["pingreq"] = MqttPingReqPacket.Instance,
            ["pingresp"] = MqttPingRespPacket.Instance,
            ["disconnect"] = new MqttDisconnectPacket(),
        };
        if (v5)
        {
            packets["puback-reason"] = new MqttPubAckPacket { PacketId = 7, ReasonCode = MqttReasonCode.NotAuthorized, Properties = new MqttProperties { ReasonString = "denied" }.AddUserProperty("u", "v") };
            packets["pubrec-reason-only"] = new MqttPubRecPacket { PacketId = 8, ReasonCode = MqttReasonCode.NoMatchingSubscribers };
            packets["pubrel-notfound"] = new MqttPubRelPacket { PacketId = 9, ReasonCode = MqttReasonCode.PacketIdentifierNotFound };
            packets["pubcomp-props"] = new MqttPubCompPacket { PacketId = 10, Properties = new MqttProperties { ReasonString = "r" } };
            packets["publish-alias-only"] = new MqttPublishPacket { Topic = "", Properties = new MqttProperties { TopicAlias = 1 }, Payload = new ReadOnlySequence<byte>([1]) };
            packets["suback-props"] = new MqttSubAckPacket { PacketId = 1, ReasonCodes = [MqttReasonCode.NotAuthorized, MqttReasonCode.TopicFilterInvalid], Properties = new MqttProperties { ReasonString = "no" } };
            packets["unsubscribe-props"] = new MqttUnsubscribePacket { PacketId = 2, TopicFilters = ["x"], Properties = new MqttProperties().AddUserProperty("k", "v") };
            packets["disconnect-reason"] = new MqttDisconnectPacket { ReasonCode = MqttReasonCode.SessionTakenOver };
            packets["disconnect-props"] = new MqttDisconnectPacket
            {
                ReasonCode = MqttReasonCode.UseAnotherServer,
                Properties = new MqttProperties { SessionExpiryInterval = 0, ServerReference = "b", ReasonString = "move" },
            };
            packets["auth"] = new MqttAuthPacket();
            packets["auth-continue"] = new MqttAuthPacket
            {
                ReasonCode = MqttReasonCode.ContinueAuthentication,
                Properties = new MqttProperties { AuthenticationMethod = "SCRAM", AuthenticationData = new byte[] { 1, 2 }, ReasonString = "more" },
            };
        }
        return packets;
    }

    [Theory]
    [MemberData(nameof(AllPackets))]
    public void Every_packet_round_trips_byte_for_byte(string name, MqttProtocolVersion version)
    {
        var packet = SamplePackets(version)[name];
        var bytes = MqttPacketWriter.ToArray(packet, version);
        Assert.Equal(bytes.Length, MqttPacketWriter.GetSize(packet, version));

        var decoded = Decode(bytes, version);
        Assert.Equal(packet.Type, decoded.Type);
        Assert.Equal(bytes, MqttPacketWriter.ToArray(decoded, version));

        // Split the same bytes across segments at every offset: the reader must give the same packet.
        for (var split = 1; split < bytes.Length; split += Math.Max(1, bytes.Length / 40))
        {
            var sequence = TwoSegments(bytes, split);
            Assert.True(MqttPacketReader.TryRead(ref sequence, version, int.MaxValue, out var again));
            Assert.True(sequence.IsEmpty);
            Assert.Equal(bytes, MqttPacketWriter.ToArray(again, version));
        }

        // Every strict prefix is incomplete, not an error.
        for (var cut = 0; cut < bytes.Length; cut++)
        {
            var prefix = new ReadOnlySequence<byte>(bytes, 0, cut);
            Assert.False(MqttPacketReader.TryRead(ref prefix, version, int.MaxValue, out _));
        }
    }

    [Fact]
    public void Decoded_fields_match_what_was_encoded()
    {
        var original = (MqttConnectPacket)SamplePackets(MqttProtocolVersion.V500)["connect-full"];
        var decoded = (MqttConnectPacket)Decode(MqttPacketWriter.ToArray(original, MqttProtocolVersion.V500), MqttProtocolVersion.V311);
        Assert.Equal(MqttProtocolVersion.V500, decoded.ProtocolVersion);
        Assert.Equal("device-ü", decoded.ClientId);
        Assert.False(decoded.CleanStart);
        Assert.Equal(30, decoded.KeepAlive);
        Assert.Equal("user", decoded.UserName);
        Assert.Equal(new byte[] { 1, 2, 0, 255 }, decoded.Password!.Value.ToArray());
        Assert.Equal("devices/d1/status", decoded.Will!.Topic);
        Assert.Equal("offline", Encoding.UTF8.GetString(decoded.Will.Payload.Span));
        Assert.Equal(MqttQualityOfService.AtLeastOnce, decoded.Will.QoS);
        Assert.True(decoded.Will.Retain);
        Assert.Equal(5u, decoded.Will.Properties!.WillDelayInterval);
        Assert.Equal(3600u, decoded.Properties!.SessionExpiryInterval);
        Assert.Equal((ushort)20, decoded.Properties.ReceiveMaximum);
        Assert.Equal([new MqttUserProperty("a", "1"), new MqttUserProperty("a", "2")], decoded.Properties.UserProperties!);

        var publish = (MqttPublishPacket)Decode(MqttPacketWriter.ToArray(SamplePackets(MqttProtocolVersion.V500)["publish-qos2-props"], MqttProtocolVersion.V500), MqttProtocolVersion.V500);
        Assert.Equal("a/b/c", publish.Topic);
        Assert.Equal(MqttQualityOfService.ExactlyOnce, publish.QoS);
        Assert.Equal(65535, publish.PacketId);
        Assert.Equal("{\"t\":21.5}", Encoding.UTF8.GetString(publish.Payload.ToArray()));
        Assert.Equal([1u, 268_435_455u], publish.Properties!.SubscriptionIdentifiers!);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", publish.Properties.GetUserProperty("traceparent"));
    }

    [Fact]
    public void A_311_connack_carries_the_311_return_code()
    {
        var bytes = MqttPacketWriter.ToArray(new MqttConnAckPacket { ReasonCode = MqttReasonCode.NotAuthorized }, MqttProtocolVersion.V311);
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x05 }, bytes);
        var suback = MqttPacketWriter.ToArray(new MqttSubAckPacket { PacketId = 1, ReasonCodes = [MqttReasonCode.NotAuthorized] }, MqttProtocolVersion.V311);
        Assert.Equal(new byte[] { 0x90, 0x03, 0x00, 0x01, 0x80 }, suback);
    }

    [Fact]
    public void Several_packets_in_one_buffer_are_read_in_order_and_a_partial_tail_waits()
    {
        var a = MqttPacketWriter.ToArray(new MqttPubAckPacket { PacketId = 1 }, MqttProtocolVersion.V500);
        var b = MqttPacketWriter.ToArray(MqttPingReqPacket.Instance, MqttProtocolVersion.V500);
        var c = MqttPacketWriter.ToArray(new MqttPublishPacket { Topic = "t", Payload = new ReadOnlySequence<byte>(new byte[200]) }, MqttProtocolVersion.V500);
        var all = a.Concat(b).Concat(c[..^1]).ToArray();
        var buffer = new ReadOnlySequence<byte>(all);
        Assert.True(MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, 1000, out var first));
        Assert.IsType<MqttPubAckPacket>(first);
        Assert.True(MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, 1000, out var second));
        Assert.IsType<MqttPingReqPacket>(second);
        Assert.False(MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, 1000, out _));
        Assert.Equal(c.Length - 1, buffer.Length);
    }

    public static TheoryData<string, string, MqttProtocolVersion, MqttReasonCode> MalformedPackets() => new()
    {
        { "reserved type 0", "00 00", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "AUTH in 3.1.1", "F0 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNACK reserved header flags", "21 03 00 00 00", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "CONNACK reserved ack flags", "20 03 02 00 00", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "PUBREL without flag 0010", "60 02 00 01", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "SUBSCRIBE without flag 0010", "80 06 00 01 00 01 61 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "UNSUBSCRIBE without flag 0010", "A0 05 00 01 00 01 61", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "PINGREQ with flags", "C1 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "PUBLISH QoS 3", "36 05 00 01 61 00 01", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "PUBLISH QoS 0 with DUP", "38 03 00 01 61", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "remaining length of 5 bytes", "30 FF FF FF FF 01", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "remaining length not minimal", "C0 80 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "PINGREQ with a body", "C0 01 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "PUBACK trailing byte (3.1.1)", "40 03 00 01 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "string longer than packet", "30 03 00 05 61", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "invalid UTF-8 in topic", "30 04 00 02 C3 28", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "overlong UTF-8 (C0 80)", "30 04 00 02 C0 80", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "UTF-16 surrogate in UTF-8", "30 05 00 03 ED A0 80", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "U+0000 in topic", "30 04 00 02 61 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "wildcard + in PUBLISH topic", "30 05 00 03 61 2F 2B", MqttProtocolVersion.V311, MqttReasonCode.TopicNameInvalid },
        { "wildcard # in PUBLISH topic", "30 03 00 01 23", MqttProtocolVersion.V500, MqttReasonCode.TopicNameInvalid },
        { "empty topic (3.1.1)", "30 02 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "empty topic without alias (v5)", "30 03 00 00 00", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "QoS 1 with packet id 0", "32 05 00 01 61 00 00", MqttProtocolVersion.V311, MqttReasonCode.ProtocolError },
        { "PUBACK packet id 0", "40 02 00 00", MqttProtocolVersion.V311, MqttReasonCode.ProtocolError },
        { "SUBSCRIBE packet id 0", "82 06 00 00 00 01 61 00", MqttProtocolVersion.V311, MqttReasonCode.ProtocolError },
        { "property twice", "30 0E 00 01 61 0A 02 00 00 00 01 02 00 00 00 02", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "property not allowed in PUBLISH", "30 09 00 01 61 05 11 00 00 00 01", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "unknown property id", "30 06 00 01 61 02 7F 00", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "property length beyond packet", "30 05 00 01 61 09 01", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "payload format indicator 2", "30 06 00 01 61 02 01 02", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "topic alias 0", "30 07 00 01 61 03 23 00 00", MqttProtocolVersion.V500, MqttReasonCode.TopicAliasInvalid },
        { "subscription identifier 0", "82 09 00 01 02 0B 00 00 01 61 00", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "payload marked UTF-8 but is not", "30 08 00 01 61 02 01 01 C3 28", MqttProtocolVersion.V500, MqttReasonCode.PayloadFormatInvalid },
        { "CONNECT reserved flag", "10 0C 00 04 4D 51 54 54 04 01 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNECT will QoS without will flag", "10 0C 00 04 4D 51 54 54 04 0A 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNECT will QoS 3", "10 0C 00 04 4D 51 54 54 04 1E 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNECT password without user (3.1.1)", "10 0E 00 04 4D 51 54 54 04 42 00 3C 00 00 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNECT protocol name", "10 0C 00 04 4D 51 54 58 04 02 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "CONNECT protocol level 6", "10 0C 00 04 4D 51 54 54 06 02 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.UnsupportedProtocolVersion },
        { "CONNECT MQIsdp (3.1)", "10 0E 00 06 4D 51 49 73 64 70 03 02 00 3C 00 00", MqttProtocolVersion.V311, MqttReasonCode.UnsupportedProtocolVersion },
        { "CONNECT receive maximum 0", "10 10 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 00", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "CONNECT maximum packet size 0", "10 12 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 00", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "CONNECT will topic with wildcard", "10 11 00 04 4D 51 54 54 04 06 00 3C 00 00 00 01 23 00 00", MqttProtocolVersion.V311, MqttReasonCode.TopicNameInvalid },
        { "SUBSCRIBE without filters (3.1.1)", "82 02 00 01", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "SUBSCRIBE without filters (v5)", "82 03 00 01 00", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "SUBSCRIBE reserved option bits (3.1.1)", "82 06 00 01 00 01 61 04", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "SUBSCRIBE reserved option bits (v5)", "82 07 00 01 00 00 01 61 40", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "SUBSCRIBE QoS 3", "82 06 00 01 00 01 61 03", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "SUBSCRIBE retain handling 3", "82 07 00 01 00 00 01 61 30", MqttProtocolVersion.V500, MqttReasonCode.ProtocolError },
        { "UNSUBSCRIBE without filters", "A2 02 00 01", MqttProtocolVersion.V311, MqttReasonCode.MalformedPacket },
        { "AUTH with a publish reason code", "F0 01 10", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
        { "DISCONNECT property not allowed", "E0 07 00 05 02 00 00 00 01", MqttProtocolVersion.V500, MqttReasonCode.MalformedPacket },
    };

    [Theory]
    [MemberData(nameof(MalformedPackets))]
    public void Malformed_packets_throw_with_the_reason_code(string description, string hex, MqttProtocolVersion version, MqttReasonCode expected)
    {
        var buffer = new ReadOnlySequence<byte>(Convert.FromHexString(hex.Replace(" ", "")));
        var error = Assert.Throws<MqttProtocolException>(() => MqttPacketReader.TryRead(ref buffer, version, 1 << 20, out _));
        Assert.True(expected == error.ReasonCode, $"{description}: expected {expected}, got {error.ReasonCode} ({error.Message})");
    }

    [Fact]
    public void An_oversized_packet_is_refused_from_its_header_alone()
    {
        // Only the fixed header of a 1 MB PUBLISH has arrived: the limit applies before the body is buffered.
        var buffer = new ReadOnlySequence<byte>([0x30, 0x80, 0x80, 0x40]);
        var error = Assert.Throws<MqttProtocolException>(() => MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, 1000, out _));
        Assert.Equal(MqttReasonCode.PacketTooLarge, error.ReasonCode);

        var exact = MqttPacketWriter.ToArray(new MqttPublishPacket { Topic = "t", Payload = new ReadOnlySequence<byte>(new byte[995]) }, MqttProtocolVersion.V311);
        var fits = new ReadOnlySequence<byte>(exact);
        Assert.True(MqttPacketReader.TryRead(ref fits, MqttProtocolVersion.V311, exact.Length, out _));
        var tooBig = new ReadOnlySequence<byte>(exact);
        Assert.Throws<MqttProtocolException>(() => MqttPacketReader.TryRead(ref tooBig, MqttProtocolVersion.V311, exact.Length - 1, out _));
    }

    [Fact]
    public void The_writer_refuses_what_a_peer_must_reject()
    {
        Assert.Equal(MqttReasonCode.TopicNameInvalid, WriteError(new MqttPublishPacket { Topic = "a/+" }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.TopicNameInvalid, WriteError(new MqttPublishPacket { Topic = "" }, MqttProtocolVersion.V311));
        Assert.Equal(MqttReasonCode.ProtocolError, WriteError(new MqttPublishPacket { Topic = "a", QoS = MqttQualityOfService.AtLeastOnce }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.MalformedPacket, WriteError(new MqttPublishPacket { Topic = "a", Dup = true }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.TopicNameInvalid, WriteError(new MqttPublishPacket { Topic = "a\0b" }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.MalformedPacket, WriteError(new MqttPublishPacket { Topic = "a", Properties = new MqttProperties { SessionExpiryInterval = 1 } }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.ProtocolError, WriteError(new MqttSubscribePacket { PacketId = 1 }, MqttProtocolVersion.V500));
        Assert.Equal(MqttReasonCode.ProtocolError, WriteError(new MqttAuthPacket(), MqttProtocolVersion.V311));
        Assert.Equal(MqttReasonCode.MalformedPacket, WriteError(new MqttPublishPacket { Topic = "a\ud800" }, MqttProtocolVersion.V500));
    }

    [Fact]
    public void Properties_are_dropped_on_311_and_kept_on_v5()
    {
        var publish = new MqttPublishPacket { Topic = "t", Properties = new MqttProperties().AddUserProperty("k", "v") };
        Assert.Equal(new byte[] { 0x30, 0x03, 0x00, 0x01, 0x74 }, MqttPacketWriter.ToArray(publish, MqttProtocolVersion.V311));
        Assert.Equal(Convert.FromHexString("300B000174072600016B000176"), MqttPacketWriter.ToArray(publish, MqttProtocolVersion.V500));
    }

    private static MqttReasonCode WriteError(MqttPacket packet, MqttProtocolVersion version) =>
        Assert.Throws<MqttProtocolException>(() => MqttPacketWriter.ToArray(packet, version)).ReasonCode;

    private static MqttPacket Decode(byte[] bytes, MqttProtocolVersion version)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(MqttPacketReader.TryRead(ref buffer, version, int.MaxValue, out var packet));
        Assert.True(buffer.IsEmpty);
        return packet;
    }

    private static ReadOnlySequence<byte> TwoSegments(byte[] bytes, int split)
    {
        var first = new Segment(bytes.AsMemory(0, split).ToArray(), 0);
        var last = first.Append(bytes.AsMemory(split).ToArray());
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
