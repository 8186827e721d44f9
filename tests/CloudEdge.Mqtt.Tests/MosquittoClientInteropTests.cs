using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Mqtt.Tests;

/// <summary>Debian's mosquitto_pub and mosquitto_sub, as separate processes, against our broker.</summary>
public sealed class MosquittoClientInteropTests
{
    private const string Pub = "mosquitto_pub";
    private const string Sub = "mosquitto_sub";
    private const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    private static string V(MqttProtocolVersion version) => version == MqttProtocolVersion.V500 ? "mqttv5" : "mqttv311";

    private static string[] Common(int port, MqttProtocolVersion version, string clientId) =>
        ["-h", "127.0.0.1", "-p", port.ToString(), "-V", V(version), "-i", clientId];

    private static async Task<ExternalProcess> StartSubscriberAsync(MqttServer server, MqttProtocolVersion version, string clientId, string filter, int qos, int count, string format, params string[] extra)
    {
        var process = ExternalProcess.Start(Sub, [.. Common(server.TcpPort!.Value, version, clientId), "-t", filter, "-q", qos.ToString(), "-C", count.ToString(), "-W", "60", "-F", format, .. extra]);
        await TestBroker.WaitUntilAsync(() => server.Broker.IsSubscribed(clientId, filter), $"{clientId} subscribed to {filter}");
        return process;
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, 0)]
    [InlineData(MqttProtocolVersion.V311, 1)]
    [InlineData(MqttProtocolVersion.V311, 2)]
    [InlineData(MqttProtocolVersion.V500, 0)]
    [InlineData(MqttProtocolVersion.V500, 1)]
    [InlineData(MqttProtocolVersion.V500, 2)]
    public async Task Every_qos_arrives_byte_for_byte(MqttProtocolVersion version, int qos)
    {
        await using var server = await TestBroker.StartAsync();
        var payload = new byte[512];
        new Random(qos * 10 + (int)version).NextBytes(payload);
        payload[0] = 0;
        payload[1] = (byte)'\n';
        payload[^1] = 0xFF;
        var file = Path.GetTempFileName();
        await File.WriteAllBytesAsync(file, payload);
        try
        {
            var topic = $"interop/qos{qos}/v{(byte)version}";
            using var sub = await StartSubscriberAsync(server, version, $"sub-{qos}", topic, qos, 1, "%q|%r|%t|%x");
            var (exit, _, stderr) = await ExternalProcess.RunAsync(Pub, [.. Common(server.TcpPort!.Value, version, $"pub-{qos}"), "-t", topic, "-q", qos.ToString(), "-f", file]);
            Assert.True(exit == 0, stderr);
            var (subExit, stdout, subErr) = await sub.WaitAsync();
            Assert.True(subExit == 0, subErr);
            Assert.Equal($"{qos}|0|{topic}|{Convert.ToHexStringLower(payload)}\n", Encoding.ASCII.GetString(stdout));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_retained_message_reaches_a_later_subscriber_and_an_empty_one_clears_it(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        var (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, version, "retainer"), "-t", "status/line-1", "-q", "1", "-r", "-m", "running ✓"]);
        Assert.True(exit == 0, err);
        Assert.Equal(1, server.Broker.RetainedCount);

        var (subExit, stdout, subErr) = await ExternalProcess.RunAsync(Sub, [.. Common(port, version, "late"), "-t", "status/+", "-q", "1", "-C", "1", "-W", "60", "-F", "%r|%q|%t|%p"]);
        Assert.True(subExit == 0, subErr);
        Assert.Equal(Encoding.UTF8.GetBytes("1|1|status/line-1|running ✓\n"), stdout);

        (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, version, "clearer"), "-t", "status/line-1", "-r", "-n"]);
        Assert.True(exit == 0, err);
        await TestBroker.WaitUntilAsync(() => server.Broker.RetainedCount == 0, "retained message cleared");
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task The_will_of_a_killed_client_is_published(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var watcher = await RawClient.ConnectOkAsync(port, "watcher", version);
        await watcher.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "wills/#", QoS = MqttQualityOfService.AtLeastOnce }] });
        await watcher.ReceiveAsync<MqttSubAckPacket>();

        using var doomed = ExternalProcess.Start(Sub, [.. Common(port, version, "doomed"), "-t", "doomed/in", "--will-topic", "wills/doomed", "--will-payload", "lost contact", "--will-qos", "1"]);
        await TestBroker.WaitUntilAsync(() => server.Broker.IsSubscribed("doomed", "doomed/in"), "doomed connected");
        doomed.Kill();

        var will = await watcher.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("wills/doomed", will.Topic);
        Assert.Equal("lost contact", Encoding.UTF8.GetString(will.Payload.ToArray()));
        Assert.Equal(MqttQualityOfService.AtLeastOnce, will.QoS);
    }

    [Fact]
    public async Task A_clean_disconnect_discards_the_will()
    {
        await using var server = await TestBroker.StartAsync();
        var port = server.TcpPort!.Value;
        await using var watcher = await RawClient.ConnectOkAsync(port, "watcher");
        await watcher.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = "#" }] });
        await watcher.ReceiveAsync<MqttSubAckPacket>();

        var (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, MqttProtocolVersion.V500, "polite"), "-t", "polite/data", "-m", "bye", "--will-topic", "wills/polite", "--will-payload", "x"]);
        Assert.True(exit == 0, err);
        var first = await watcher.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("polite/data", first.Topic);
        await TestBroker.WaitUntilAsync(() => server.Broker.SessionCount == 1, "polite session ended");
        // A marker published after the session ended arrives next: the will did not come in between.
        server.Broker.Publish("marker", "m"u8.ToArray());
        var next = await watcher.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("marker", next.Topic);
    }

    private sealed class CapturingInterceptor : IMqttPublishInterceptor
    {
        public readonly List<(string ClientId, string Topic, byte[] Payload, List<MqttUserProperty> UserProperties, ActivityTraceId? TraceId, ActivitySpanId? ParentSpanId)> Seen = [];

        public ValueTask<MqttReasonCode> InterceptAsync(MqttPublishContext context, CancellationToken cancellationToken)
        {
            lock (Seen)
            {
                Seen.Add((context.ClientId, context.Topic, context.Payload.ToArray(), [.. context.UserProperties], context.Activity?.TraceId, context.Activity?.ParentSpanId));
            }
            return ValueTask.FromResult(context.Topic.StartsWith("reject/", StringComparison.Ordinal) ? MqttReasonCode.PayloadFormatInvalid : MqttReasonCode.Success);
        }
    }

    [Fact]
    public async Task User_properties_from_mosquitto_pub_reach_subscribers_the_interceptor_and_the_trace()
    {
        var interceptor = new CapturingInterceptor();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == MqttBrokerTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        await using var server = await TestBroker.StartAsync(services: s => s.AddSingleton<IMqttPublishInterceptor>(interceptor));

        using var sub = await StartSubscriberAsync(server, MqttProtocolVersion.V500, "props-sub", "sensors/#", 1, 1, "%t|%P|%p");
        var (exit, _, err) = await ExternalProcess.RunAsync(Pub,
        [
            .. Common(server.TcpPort!.Value, MqttProtocolVersion.V500, "props-pub"), "-t", "sensors/s1/temp", "-q", "1", "-m", "21.5",
            "-D", "publish", "user-property", "traceparent", TraceParent,
            "-D", "publish", "user-property", "site", "plant-4",
        ]);
        Assert.True(exit == 0, err);
        var (subExit, stdout, subErr) = await sub.WaitAsync();
        Assert.True(subExit == 0, subErr);
        Assert.Equal($"sensors/s1/temp|traceparent:{TraceParent} site:plant-4|21.5\n", Encoding.UTF8.GetString(stdout));

        var seen = Assert.Single(interceptor.Seen);
        Assert.Equal("props-pub", seen.ClientId);
        Assert.Equal("21.5"u8.ToArray(), seen.Payload);
        Assert.Equal([new MqttUserProperty("traceparent", TraceParent), new MqttUserProperty("site", "plant-4")], seen.UserProperties);
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", seen.TraceId?.ToHexString());
        Assert.Equal("00f067aa0ba902b7", seen.ParentSpanId?.ToHexString());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Password_authentication_accepts_the_right_secret_only(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync(o =>
        {
            o.AllowAnonymous = false;
            o.Users["alice"] = MqttPasswordHasher.Hash("s3cret", iterations: 10_000);
        });
        var port = server.TcpPort!.Value;
        using var sub = ExternalProcess.Start(Sub, [.. Common(port, version, "alice-sub"), "-u", "alice", "-P", "s3cret", "-t", "auth/t", "-C", "1", "-W", "60"]);
        await TestBroker.WaitUntilAsync(() => server.Broker.IsSubscribed("alice-sub", "auth/t"), "alice subscribed");

        var (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, version, "alice-pub"), "-u", "alice", "-P", "s3cret", "-t", "auth/t", "-m", "ok"]);
        Assert.True(exit == 0, err);
        var (_, stdout, _) = await sub.WaitAsync();
        Assert.Equal("ok\n", Encoding.UTF8.GetString(stdout));

        (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, version, "mallory"), "-u", "alice", "-P", "guess", "-t", "auth/t", "-m", "x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("bad user name or password", err, StringComparison.OrdinalIgnoreCase);

        (exit, _, err) = await ExternalProcess.RunAsync(Pub, [.. Common(port, version, "anonymous"), "-t", "auth/t", "-m", "x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("not authori", err, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_subscription_outside_the_acl_is_denied(MqttProtocolVersion version)
    {
        await using var server = await TestBroker.StartAsync(o => o.AclRules.Add(new MqttAclRule { Topic = "devices/{clientid}/#" }));
        var port = server.TcpPort!.Value;
        var (exit, _, err) = await ExternalProcess.RunAsync(Sub, [.. Common(port, version, "dev1"), "-t", "devices/dev2/#", "-E", "-W", "60"]);
        Assert.Contains("denied", err, StringComparison.OrdinalIgnoreCase);

        (exit, _, err) = await ExternalProcess.RunAsync(Sub, [.. Common(port, version, "dev1"), "-t", "devices/dev1/#", "-E", "-W", "60"]);
        Assert.True(exit == 0, err);
        Assert.DoesNotContain("denied", err, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Tls_with_a_client_certificate_authenticates_and_password_clients_share_the_broker()
    {
        using var certs = new TestCertificates("device-7");
        await using var server = await TestBroker.StartAsync(
            o =>
            {
                o.AllowAnonymous = false;
                o.Users["ops"] = MqttPasswordHasher.Hash("pw", iterations: 10_000);
                o.AclRules.Add(new MqttAclRule { Access = MqttAclAccess.Publish, Topic = "devices/{username}/#" });
                o.AclRules.Add(new MqttAclRule { UserName = "ops", Topic = "#" });
            },
            server: new MqttServerOptions
            {
                TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                TlsEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                ServerCertificate = certs.Server,
                ClientCertificateAuthorities = [certs.Authority],
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            });
        var tlsPort = server.TlsPort!.Value.ToString();

        using var sub = ExternalProcess.Start(Sub, ["-h", "127.0.0.1", "-p", tlsPort, "--cafile", certs.AuthorityPem, "-V", "mqttv5", "-i", "ops-sub", "-u", "ops", "-P", "pw", "-t", "devices/#", "-q", "1", "-C", "1", "-W", "60", "-F", "%t|%p"]);
        await TestBroker.WaitUntilAsync(() => server.Broker.IsSubscribed("ops-sub", "devices/#"), "ops subscribed over TLS");

        var (exit, _, err) = await ExternalProcess.RunAsync(Pub, ["-h", "127.0.0.1", "-p", tlsPort, "--cafile", certs.AuthorityPem, "--cert", certs.ClientCertPem, "--key", certs.ClientKeyPem, "-V", "mqttv311", "-i", "dev-7", "-t", "devices/device-7/temp", "-q", "1", "-m", "22.0"]);
        Assert.True(exit == 0, err);
        var (subExit, stdout, subErr) = await sub.WaitAsync();
        Assert.True(subExit == 0, subErr);
        Assert.Equal("devices/device-7/temp|22.0\n", Encoding.UTF8.GetString(stdout));

        // No certificate and no password over TLS: refused.
        (exit, _, err) = await ExternalProcess.RunAsync(Pub, ["-h", "127.0.0.1", "-p", tlsPort, "--cafile", certs.AuthorityPem, "-V", "mqttv311", "-i", "nobody", "-t", "devices/x/t", "-m", "x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("not authori", err, StringComparison.OrdinalIgnoreCase);
    }
}
