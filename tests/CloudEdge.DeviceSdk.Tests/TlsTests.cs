using System.Security.Authentication;

namespace CloudEdge.DeviceSdk.Tests;

public sealed class TlsTests
{
    private static MqttClientOptions TlsOptions(int port, MqttTlsOptions tls, string clientId = "sim-tls-0001", MqttProtocolVersion version = MqttProtocolVersion.V500) => new()
    {
        Host = "localhost",
        Port = port,
        ClientId = clientId,
        ProtocolVersion = version,
        Tls = tls,
        Reconnect = new MqttReconnectOptions { Enabled = false },
    };

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task Mutual_TLS_with_a_private_CA_round_trips(MqttProtocolVersion version)
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.Tls = pki;
            s.RequireClientCertificate = true;
        });
        using var deviceCert = pki.CreateClientCertificate("sim-tls-0001");
        var tls = new MqttTlsOptions { TrustedCa = pki.Ca, ClientCertificate = deviceCert };
        await using var device = new MqttClient(TlsOptions(broker.Port, tls, version: version));
        var result = await device.ConnectAsync();
        Assert.Equal(MqttReasonCode.Success, result.ReasonCode);

        var topic = $"tls/{Guid.NewGuid():N}";
        await device.SubscribeAsync(topic, MqttQualityOfService.ExactlyOnce);
        var received = new TaskCompletionSource<MqttMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.MessageHandler = (m, _) => { received.TrySetResult(m); return ValueTask.CompletedTask; };
        await device.PublishAsync(topic, "over tls"u8.ToArray(), MqttQualityOfService.ExactlyOnce);
        var m = await received.Task.WaitAsync(Wait.Long);
        Assert.Equal("over tls"u8.ToArray(), m.Payload.ToArray());
    }

    [Fact]
    public async Task The_server_name_is_checked_and_can_be_set_explicitly()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(s => s.Tls = pki);
        // 127.0.0.1 is in the certificate as an IP SAN; "sensor-gw" is not in it at all.
        await using (var wrongName = new MqttClient(new MqttClientOptions
        {
            Host = "127.0.0.1", Port = broker.Port, ClientId = "tls-name",
            Tls = new MqttTlsOptions { TrustedCa = pki.Ca, TargetHost = "sensor-gw" },
        }))
        {
            var e = await Assert.ThrowsAsync<MqttConnectException>(() => wrongName.ConnectAsync());
            Assert.IsType<AuthenticationException>(e.InnerException);
            Assert.Null(e.ReasonCode);
        }
        await using var rightName = new MqttClient(new MqttClientOptions
        {
            Host = "127.0.0.1", Port = broker.Port, ClientId = "tls-name",
            Tls = new MqttTlsOptions { TrustedCa = pki.Ca, TargetHost = "localhost" },
        });
        Assert.Equal(MqttReasonCode.Success, (await rightName.ConnectAsync()).ReasonCode);
    }

    [Fact]
    public async Task A_server_from_another_CA_is_refused()
    {
        using var pki = new TestPki();
        using var otherPki = new TestPki("Some Other CA");
        await using var broker = await Mosquitto.StartAsync(s => s.Tls = pki);
        await using var device = new MqttClient(TlsOptions(broker.Port, new MqttTlsOptions { TrustedCa = otherPki.Ca }));
        var e = await Assert.ThrowsAsync<MqttConnectException>(() => device.ConnectAsync());
        Assert.IsType<AuthenticationException>(e.InnerException);
    }

    [Fact]
    public async Task Without_a_client_certificate_a_broker_that_requires_one_refuses()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.Tls = pki;
            s.RequireClientCertificate = true;
        });
        await using var device = new MqttClient(TlsOptions(broker.Port, new MqttTlsOptions { TrustedCa = pki.Ca }));
        var e = await Assert.ThrowsAsync<MqttConnectException>(() => device.ConnectAsync());
        Assert.Null(e.ReasonCode);
        Assert.False(device.IsConnected);
    }
}
