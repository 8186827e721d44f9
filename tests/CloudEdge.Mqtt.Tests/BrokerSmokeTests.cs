using System.Buffers;
using System.Text;

namespace CloudEdge.Mqtt.Tests;

public sealed class BrokerSmokeTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_subscriber_receives_what_a_publisher_sends(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        await using var sub = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "sub", version);
        await sub.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "a/+", QoS = MqttQualityOfService.AtLeastOnce }] });
        var suback = await sub.ReceiveAsync<MqttSubAckPacket>();
        Assert.Equal([MqttReasonCode.GrantedQoS1], suback.ReasonCodes);

        await using var pub = await RawClient.ConnectOkAsync(server.TcpPort!.Value, "pub", version);
        await pub.SendAsync(new MqttPublishPacket { Topic = "a/b", QoS = MqttQualityOfService.AtLeastOnce, PacketId = 5, Payload = new ReadOnlySequence<byte>("hi"u8.ToArray()) });
        var puback = await pub.ReceiveAsync<MqttPubAckPacket>();
        Assert.Equal(5, puback.PacketId);

        var received = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("a/b", received.Topic);
        Assert.Equal("hi", Encoding.UTF8.GetString(received.Payload.ToArray()));
        Assert.Equal(MqttQualityOfService.AtLeastOnce, received.QoS);
        await sub.SendAsync(new MqttPubAckPacket { PacketId = received.PacketId });
    }
}
