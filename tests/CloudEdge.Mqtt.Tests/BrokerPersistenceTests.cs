using System.Buffers;
using System.Text;
using CloudEdge.Mqtt.Broker;
using Microsoft.Data.Sqlite;

namespace CloudEdge.Mqtt.Tests;

/// <summary>Persistent sessions and retained messages in SQLite survive a SIGKILL of the broker process.</summary>
public sealed class BrokerPersistenceTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("cloudedge-broker-store-").FullName;

    private static readonly MqttProperties Durable = new() { SessionExpiryInterval = 3600 };

    private static MqttPublishPacket Message(string topic, string payload, MqttQualityOfService qos, ushort id = 0, bool retain = false) =>
        new() { Topic = topic, Payload = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)), QoS = qos, PacketId = id, Retain = retain };

    private static string Text(MqttPublishPacket p) => Encoding.UTF8.GetString(p.Payload.ToArray());

    private async Task<(ExternalProcess Host, int Port)> StartBrokerAsync()
    {
        var port = BrokerHostTests.FreePort();
        var host = ExternalProcess.Start("dotnet", [BrokerHostTests.BrokerHostDll(), "--port", port.ToString(), "--allow-anonymous", "--data-dir", _dataDir]);
        await BrokerHostTests.WaitListeningAsync(port);
        return (host, port);
    }

    private long Query(string sql)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_dataDir, "broker.db"), Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar() is long value ? value : -1;
    }

    [Fact]
    public async Task Sessions_queued_and_inflight_messages_and_retained_messages_survive_sigkill()
    {
        var (host, port) = await StartBrokerAsync();
        using (host)
        {
            // A persistent subscriber (QoS 2, subscription identifier 7) takes one QoS 1 message and never acknowledges it.
            await using (var sub = await RawClient.ConnectOkAsync(port, "durable-sub", cleanStart: false, properties: Durable))
            {
                await sub.SendAsync(new MqttSubscribePacket
                {
                    PacketId = 1,
                    Subscriptions = [new MqttSubscription { TopicFilter = "q/#", QoS = MqttQualityOfService.ExactlyOnce }],
                    Properties = new MqttProperties { SubscriptionIdentifiers = [7] },
                });
                await sub.ReceiveAsync<MqttSubAckPacket>();
                await using var first = await RawClient.ConnectOkAsync(port, "first-pub");
                await first.SendAsync(Message("q/1", "one", MqttQualityOfService.AtLeastOnce, 1));
                await first.ReceiveAsync<MqttPubAckPacket>();
                Assert.Equal("one", Text(await sub.ReceiveAsync<MqttPublishPacket>()));
            }

            // Queued while the subscriber is away: QoS 1, a completed QoS 2, and a QoS 2 whose PUBREL never comes
            // (the publisher's session remembers its id); then a retained message.
            await using var pub = await RawClient.ConnectOkAsync(port, "durable-pub", cleanStart: false, properties: Durable);
            await pub.SendAsync(Message("q/2", "two", MqttQualityOfService.AtLeastOnce, 2));
            await pub.ReceiveAsync<MqttPubAckPacket>();
            await pub.SendAsync(Message("q/3", "three", MqttQualityOfService.ExactlyOnce, 3));
            await pub.ReceiveAsync<MqttPubRecPacket>();
            await pub.SendAsync(new MqttPubRelPacket { PacketId = 3 });
            await pub.ReceiveAsync<MqttPubCompPacket>();
            await pub.SendAsync(Message("q/4", "four", MqttQualityOfService.ExactlyOnce, 44));
            await pub.ReceiveAsync<MqttPubRecPacket>();
            await pub.SendAsync(Message("r/config", "retained-v1", MqttQualityOfService.AtLeastOnce, 5, retain: true));
            await pub.ReceiveAsync<MqttPubAckPacket>();

            // The flush policy is group commit every 50 ms: wait until the store holds it all, then kill.
            await TestBroker.WaitUntilAsync(
                () => Query("SELECT queued FROM mqtt_sessions WHERE client_id = 'durable-sub'") == 4 && Query("SELECT count(*) FROM mqtt_retained") == 1,
                "sessions and retained message committed to broker.db");
            host.Kill();
            await host.WaitAsync();
        }

        (host, port) = await StartBrokerAsync();
        using (host)
        {
            var (sub, ack) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "durable-sub", CleanStart = false, Properties = Durable });
            await using (sub)
            {
                Assert.Equal(MqttReasonCode.Success, ack.ReasonCode);
                Assert.True(ack.SessionPresent);
                // The unacknowledged message first, with DUP, then the queue in order, all with the subscription identifier.
                var resent = await sub.ReceiveAsync<MqttPublishPacket>();
                Assert.Equal(("q/1", "one", true), (resent.Topic, Text(resent), resent.Dup));
                await sub.SendAsync(new MqttPubAckPacket { PacketId = resent.PacketId });
                var received = new List<string> { Text(resent) };
                var awaitingRelease = 0;
                // The broker pipelines the queue: PUBRELs arrive between later PUBLISHes.
                while (received.Count < 4 || awaitingRelease > 0)
                {
                    switch (await sub.ReceiveAsync())
                    {
                        case MqttPublishPacket p:
                            Assert.Equal([7u], p.Properties?.SubscriptionIdentifiers);
                            received.Add(Text(p));
                            if (p.QoS == MqttQualityOfService.AtLeastOnce)
                            {
                                await sub.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                            }
                            else
                            {
                                awaitingRelease++;
                                await sub.SendAsync(new MqttPubRecPacket { PacketId = p.PacketId });
                            }
                            break;
                        case MqttPubRelPacket rel:
                            awaitingRelease--;
                            await sub.SendAsync(new MqttPubCompPacket { PacketId = rel.PacketId });
                            break;
                        case var other:
                            Assert.Fail($"Unexpected {other?.Type.ToString() ?? "end of stream"}.");
                            break;
                    }
                }
                Assert.Equal(["one", "two", "three", "four"], received);

                // The publisher's session still holds QoS 2 id 44: its resend is acknowledged, not routed again.
                var (pub, pubAck) = await RawClient.ConnectAsync(port, new MqttConnectPacket { ClientId = "durable-pub", CleanStart = false, Properties = Durable });
                await using (pub)
                {
                    Assert.True(pubAck.SessionPresent);
                    var resend = Message("q/4", "four", MqttQualityOfService.ExactlyOnce, 44);
                    resend.Dup = true;
                    await pub.SendAsync(resend);
                    Assert.Equal(44, (await pub.ReceiveAsync<MqttPubRecPacket>()).PacketId);
                    await pub.SendAsync(new MqttPubRelPacket { PacketId = 44 });
                    Assert.Equal(MqttReasonCode.Success, (await pub.ReceiveAsync<MqttPubCompPacket>()).ReasonCode);
                    await pub.SendAsync(Message("q/5", "five", MqttQualityOfService.AtLeastOnce, 6));
                    await pub.ReceiveAsync<MqttPubAckPacket>();
                }
                var next = await sub.ReceiveAsync<MqttPublishPacket>();
                Assert.Equal("five", Text(next));
            }

            await using var late = await RawClient.ConnectOkAsync(port, "late");
            await late.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "r/#", QoS = MqttQualityOfService.AtLeastOnce }] });
            await late.ReceiveAsync<MqttSubAckPacket>();
            var retained = await late.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(("r/config", "retained-v1", true), (retained.Topic, Text(retained), retained.Retain));
        }
    }

    [Fact]
    public async Task A_graceful_stop_keeps_everything_and_ended_sessions_leave_the_store()
    {
        var path = Path.Combine(_dataDir, "inproc.db");
        await using (var server = await TestBroker.StartAsync(services: s => s.AddMqttBrokerSqliteStore(path)))
        {
            var port = server.TcpPort!.Value;
            await using (var keep = await RawClient.ConnectOkAsync(port, "keep", cleanStart: false, properties: Durable))
            {
                await keep.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "k", QoS = MqttQualityOfService.AtLeastOnce, NoLocal = true, RetainAsPublished = true }] });
                await keep.ReceiveAsync<MqttSubAckPacket>();
            }
            await using (var gone = await RawClient.ConnectOkAsync(port, "gone", cleanStart: false, properties: Durable))
            {
                // DISCONNECT with expiry 0 ends the session at once: its record is deleted.
                await gone.SendAsync(new MqttDisconnectPacket { Properties = new MqttProperties { SessionExpiryInterval = 0 } });
                await gone.ReadUntilClosedAsync();
            }
            await TestBroker.WaitUntilAsync(() => server.Broker.SessionCount == 1, "only 'keep' is left");
            server.Broker.Publish("k", "queued"u8.ToArray(), MqttQualityOfService.AtLeastOnce, retain: true);
            await TestBroker.WaitUntilAsync(() => server.Broker.RetainedCount == 1, "retained stored");
        }

        await using (var server = await TestBroker.StartAsync(services: s => s.AddMqttBrokerSqliteStore(path)))
        {
            Assert.Equal(1, server.Broker.SessionCount);
            Assert.Equal(1, server.Broker.RetainedCount);
            Assert.True(server.Broker.IsSubscribed("keep", "k"));
            var (keep, ack) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "keep", CleanStart = false, Properties = Durable });
            await using (keep)
            {
                Assert.True(ack.SessionPresent);
                var queued = await keep.ReceiveAsync<MqttPublishPacket>();
                // Retain As Published survived with the subscription.
                Assert.Equal(("queued", true), (Text(queued), queued.Retain));
            }
            var (gone, goneAck) = await RawClient.ConnectAsync(server.TcpPort!.Value, new MqttConnectPacket { ClientId = "gone", CleanStart = false, Properties = Durable });
            await using (gone) Assert.False(goneAck.SessionPresent);
        }
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dataDir, recursive: true);
    }
}
