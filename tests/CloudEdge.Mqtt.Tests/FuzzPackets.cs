using System.Buffers;
using System.Text;

namespace CloudEdge.Mqtt.Tests;

/// <summary>Random valid packets and random mutations of them, for the codec and broker fuzz tests.</summary>
internal static class FuzzPackets
{
    private static readonly string[] Topics = ["fuzz/a", "fuzz/b/c", "fuzz/" + new string('x', 40), "$SYS/fuzz", "fuzz/ü/ß", "/", "fuzz//x"];
    private static readonly string[] Filters = ["fuzz/#", "fuzz/+/c", "#", "+", "$share/g/fuzz/#", "$SYS/#", "fuzz/a", "a/#/b", "$share/g+/x"];

    public static MqttConnectPacket Connect(Random random, MqttProtocolVersion version) => new()
    {
        ProtocolVersion = version,
        ClientId = "fuzz-" + random.Next(32),
        CleanStart = random.Next(3) != 0,
        KeepAlive = (ushort)random.Next(0, 30),
        Will = random.Next(4) == 0 ? new MqttWillMessage { Topic = Pick(random, Topics), Payload = Bytes(random, 8), QoS = (MqttQualityOfService)random.Next(3), Retain = random.Next(2) == 0 } : null,
        Properties = version == MqttProtocolVersion.V500 && random.Next(2) == 0
            ? new MqttProperties { SessionExpiryInterval = (uint)random.Next(0, 5), ReceiveMaximum = (ushort)random.Next(1, 100), TopicAliasMaximum = (ushort)random.Next(0, 5), MaximumPacketSize = (uint)random.Next(64, 4096) }
            : null,
    };

    public static MqttPacket Any(Random random, MqttProtocolVersion version)
    {
        var v5 = version == MqttProtocolVersion.V500;
        var id = (ushort)random.Next(1, 20);
        var qos = (MqttQualityOfService)random.Next(3);
        MqttProperties? Props() => v5 && random.Next(2) == 0 ? new MqttProperties().AddUserProperty("k", "v" + random.Next(100)) : null;
        return random.Next(14) switch
        {
            0 => Connect(random, version),
            1 or 2 or 3 => new MqttPublishPacket
            {
                Topic = Pick(random, Topics),
                QoS = qos,
                PacketId = qos == 0 ? (ushort)0 : id,
                Retain = random.Next(4) == 0,
                Payload = new ReadOnlySequence<byte>(Bytes(random, random.Next(0, 200))),
                Properties = v5 && random.Next(2) == 0
                    ? new MqttProperties { MessageExpiryInterval = (uint)random.Next(0, 100), TopicAlias = (ushort)random.Next(1, 4), ContentType = "t" }.AddUserProperty("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                    : null,
            },
            4 => new MqttPubAckPacket { PacketId = id, Properties = Props() },
            5 => new MqttPubRecPacket { PacketId = id },
            6 => new MqttPubRelPacket { PacketId = id },
            7 => new MqttPubCompPacket { PacketId = id },
            8 => new MqttSubscribePacket
            {
                PacketId = id,
                Subscriptions = [new MqttSubscription { TopicFilter = Pick(random, Filters), QoS = qos, NoLocal = v5 && random.Next(4) == 0, RetainHandling = v5 ? (MqttRetainHandling)random.Next(3) : 0 }],
                Properties = v5 && random.Next(2) == 0 ? new MqttProperties { SubscriptionIdentifiers = [(uint)random.Next(1, 1000)] } : null,
            },
            9 => new MqttUnsubscribePacket { PacketId = id, TopicFilters = [Pick(random, Filters)] },
            10 => MqttPingReqPacket.Instance,
            11 => new MqttDisconnectPacket { ReasonCode = v5 && random.Next(2) == 0 ? MqttReasonCode.DisconnectWithWillMessage : MqttReasonCode.Success },
            12 => new MqttSubAckPacket { PacketId = id, ReasonCodes = [MqttReasonCode.GrantedQoS1] },
            _ => v5 ? new MqttAuthPacket { ReasonCode = MqttReasonCode.ContinueAuthentication, Properties = new MqttProperties { AuthenticationMethod = "x" } } : new MqttConnAckPacket(),
        };
    }

    /// <summary>A valid encoding, then zero or more mutations: bit flips, byte changes, truncation, insertion, length damage.</summary>
    public static byte[] Mutate(Random random, byte[] valid)
    {
        var bytes = new List<byte>(valid);
        var mutations = random.Next(0, 4);
        for (var m = 0; m < mutations && bytes.Count > 0; m++)
        {
            switch (random.Next(6))
            {
                case 0:
                    var i = random.Next(bytes.Count);
                    bytes[i] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.RemoveRange(random.Next(bytes.Count), 1);
                    break;
                case 3:
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
                    break;
                case 4:
                    if (bytes.Count > 1) bytes[1] = (byte)random.Next(256);
                    break;
                default:
                    bytes[0] = (byte)((random.Next(16) << 4) | (bytes[0] & 0x0F));
                    break;
            }
        }
        return [.. bytes];
    }

    public static byte[] RandomBytes(Random random) => Bytes(random, random.Next(1, 64));

    private static byte[] Bytes(Random random, int length)
    {
        var b = new byte[length];
        random.NextBytes(b);
        return b;
    }

    private static T Pick<T>(Random random, T[] items) => items[random.Next(items.Length)];
}
