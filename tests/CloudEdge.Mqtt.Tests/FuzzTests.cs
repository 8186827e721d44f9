using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace CloudEdge.Mqtt.Tests;

/// <summary>
/// Random and mutated packets against the codec and against a running broker. The broker run lasts
/// CLOUDEDGE_MQTT_FUZZ_SECONDS (default 45); docs/mqtt.md describes a longer run.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private static int FuzzSeconds => int.TryParse(Environment.GetEnvironmentVariable("CLOUDEDGE_MQTT_FUZZ_SECONDS"), out var s) && s > 0 ? s : 45;

    [Fact]
    public void The_codec_only_ever_throws_protocol_exceptions_and_re_encodes_what_it_accepts()
    {
        var random = new Random(20261121);
        int accepted = 0, refused = 0, total = 300_000;
        for (var n = 0; n < total; n++)
        {
            var version = random.Next(2) == 0 ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500;
            var bytes = random.Next(10) == 0 ? FuzzPackets.RandomBytes(random) : FuzzPackets.Mutate(random, MqttPacketWriter.ToArray(FuzzPackets.Any(random, version), version));
            var buffer = new ReadOnlySequence<byte>(bytes);
            MqttPacket? packet;
            try
            {
                if (!MqttPacketReader.TryRead(ref buffer, version, 1 << 20, out packet)) continue;
            }
            catch (MqttProtocolException)
            {
                refused++;
                continue;
            }
            accepted++;
            byte[] again;
            try
            {
                again = MqttPacketWriter.ToArray(packet, packet is MqttConnectPacket c ? c.ProtocolVersion : version);
            }
            catch (MqttProtocolException)
            {
                continue;
            }
            var reread = new ReadOnlySequence<byte>(again);
            Assert.True(MqttPacketReader.TryRead(ref reread, version, 1 << 20, out var second), Convert.ToHexString(bytes));
            Assert.Equal(again, MqttPacketWriter.ToArray(second, packet is MqttConnectPacket c2 ? c2.ProtocolVersion : version));
        }
        output.WriteLine($"codec fuzz: {total} inputs, {accepted} accepted, {refused} refused");
        Assert.True(accepted > 10_000 && refused > 10_000);
    }

    [Fact]
    public async Task The_broker_survives_random_and_mutated_packets_while_a_good_client_gets_every_message()
    {
        await using var server = await TestBroker.StartAsync(o =>
        {
            o.MaximumRetainedMessages = 1000;
            o.MaximumQueuedMessagesPerSession = 1000;
            o.MaximumPacketSize = 64 * 1024;
            o.ConnectTimeout = TimeSpan.FromSeconds(2);
            // Mutated CONNECTs invent client ids; capped expiry lets their persistent sessions go.
            o.MaximumSessionExpiryInterval = 3;
        });
        var port = server.TcpPort!.Value;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        await using var sub = await RawClient.ConnectOkAsync(port, "good-sub", MqttProtocolVersion.V500);
        await sub.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "good/stream", QoS = MqttQualityOfService.AtLeastOnce }] });
        await sub.ReceiveAsync<MqttSubAckPacket>();
        await using var pub = await RawClient.ConnectOkAsync(port, "good-pub", MqttProtocolVersion.V311);

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(FuzzSeconds));
        var received = new HashSet<int>();
        var receiver = Task.Run(async () =>
        {
            while (true)
            {
                var packet = await sub.ReceiveAsync(TimeSpan.FromSeconds(120));
                if (packet is not MqttPublishPacket p) return;
                if (p.QoS > 0) await sub.SendAsync(new MqttPubAckPacket { PacketId = p.PacketId });
                var text = Encoding.ASCII.GetString(p.Payload.ToArray());
                lock (received) received.Add(int.Parse(text));
            }
        });
        var published = 0;
        var publisher = Task.Run(async () =>
        {
            ushort id = 0;
            while (!stop.IsCancellationRequested)
            {
                id = (ushort)(id % 65535 + 1);
                await pub.SendAsync(new MqttPublishPacket { Topic = "good/stream", QoS = MqttQualityOfService.AtLeastOnce, PacketId = id, Payload = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(published.ToString())) });
                var ack = await pub.ReceiveAsync<MqttPubAckPacket>();
                Assert.Equal(id, ack.PacketId);
                published++;
                await Task.Delay(2);
            }
        });

        long packetsSent = 0, connections = 0;
        var fuzzers = Enumerable.Range(0, 12).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker * 7919 + Environment.TickCount);
            while (!stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref connections);
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, stop.Token);
                    var version = random.Next(2) == 0 ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500;
                    var payload = new List<byte>();
                    var count = 0;
                    if (random.Next(10) < 8)
                    {
                        payload.AddRange(MqttPacketWriter.ToArray(FuzzPackets.Connect(random, version), version));
                        count++;
                    }
                    var batch = random.Next(1, 200);
                    for (var i = 0; i < batch; i++, count++)
                    {
                        var valid = MqttPacketWriter.ToArray(FuzzPackets.Any(random, version), version);
                        payload.AddRange(random.Next(100) switch
                        {
                            < 75 => valid,
                            < 97 => FuzzPackets.Mutate(random, valid),
                            _ => FuzzPackets.RandomBytes(random),
                        });
                    }
                    await socket.SendAsync(payload.ToArray(), SocketFlags.None, stop.Token);
                    Interlocked.Add(ref packetsSent, count);
                    // Read what the broker answers for a moment (or until it closes), then hang up abruptly.
                    var sink = new byte[8192];
                    using var readFor = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                    readFor.CancelAfter(random.Next(1, 50));
                    while (await socket.ReceiveAsync(sink, SocketFlags.None, readFor.Token) > 0) { }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException)
                {
                }
            }
        })).ToArray();

        await Task.WhenAll(fuzzers);
        await publisher;
        await TestBroker.WaitUntilAsync(() => { lock (received) return received.Count >= published; }, $"good subscriber got all {published} messages", TimeSpan.FromSeconds(60));
        lock (received) Assert.Equal(Enumerable.Range(0, published), received.Order());

        // Every fuzz connection is gone; only the two good clients remain; sessions and retained are bounded.
        await TestBroker.WaitUntilAsync(() => server.Broker.ConnectionCount == 2, $"fuzz connections closed (open: {server.Broker.ConnectionCount})", TimeSpan.FromSeconds(60));
        await TestBroker.WaitUntilAsync(() => server.Broker.SessionCount == 2, $"fuzz sessions expired (sessions: {server.Broker.SessionCount})", TimeSpan.FromSeconds(60));
        Assert.InRange(server.Broker.RetainedCount, 0, 1000);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"broker fuzz: {FuzzSeconds}s, {connections} connections, {packetsSent} packets sent, {published} good messages, heap {heapBefore / 1024 / 1024} MB -> {heapAfter / 1024 / 1024} MB, dropped {server.Broker.DroppedMessages}");
        Assert.True(heapAfter - heapBefore < 256L * 1024 * 1024, $"managed heap grew by {(heapAfter - heapBefore) / 1024 / 1024} MB");
        Assert.True(connections > 100, "the fuzzers opened connections");

        await pub.SendAsync(new MqttDisconnectPacket());
        await sub.SendAsync(new MqttDisconnectPacket());
        await receiver;
    }
}
