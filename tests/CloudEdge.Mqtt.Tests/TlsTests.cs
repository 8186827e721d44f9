using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace CloudEdge.Mqtt.Tests;

public sealed class TlsTests
{
    private static SslClientAuthenticationOptions Trusting(TestCertificates certs, X509Certificate2? clientCertificate = null) => new()
    {
        TargetHost = "localhost",
        ClientCertificates = clientCertificate is null ? null : [clientCertificate],
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(certs.Authority);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return certificate is X509Certificate2 c && chain.Build(c);
        },
    };

    [Fact]
    public async Task Tls_without_client_cas_serves_password_clients_and_refuses_anonymous_ones()
    {
        using var certs = new TestCertificates();
        await using var server = await TestBroker.StartAsync(
            o =>
            {
                o.AllowAnonymous = false;
                o.Users["u"] = MqttPasswordHasher.Hash("p", 1000);
            },
            server: new MqttServerOptions { TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0), TlsEndPoint = new IPEndPoint(IPAddress.Loopback, 0), ServerCertificate = certs.Server });
        await using (var ok = await RawClient.OpenTlsAsync(server.TlsPort!.Value, Trusting(certs)))
        {
            await ok.SendAsync(new MqttConnectPacket { ClientId = "tls-user", UserName = "u", Password = "p"u8.ToArray() });
            Assert.Equal(MqttReasonCode.Success, (await ok.ReceiveAsync<MqttConnAckPacket>()).ReasonCode);
        }
        await using (var anonymous = await RawClient.OpenTlsAsync(server.TlsPort!.Value, Trusting(certs)))
        {
            await anonymous.SendAsync(new MqttConnectPacket { ClientId = "tls-anon" });
            Assert.Equal(MqttReasonCode.NotAuthorized, (await anonymous.ReceiveAsync<MqttConnAckPacket>()).ReasonCode);
        }
    }

    [Fact]
    public async Task A_client_certificate_from_another_ca_fails_the_handshake_when_certificates_are_required()
    {
        using var certs = new TestCertificates();
        using var stranger = new TestCertificates("intruder");
        await using var server = await TestBroker.StartAsync(
            o => o.AllowAnonymous = false,
            server: new MqttServerOptions
            {
                TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                TlsEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                ServerCertificate = certs.Server,
                ClientCertificateAuthorities = [certs.Authority],
                ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            });
        await using (var device = await RawClient.OpenTlsAsync(server.TlsPort!.Value, Trusting(certs, certs.Client)))
        {
            await device.SendAsync(new MqttConnectPacket { ClientId = "device-7" });
            Assert.Equal(MqttReasonCode.Success, (await device.ReceiveAsync<MqttConnAckPacket>()).ReasonCode);
        }
        // TLS 1.3 reports a refused client certificate after the handshake: the connection then ends without CONNACK.
        try
        {
            await using var intruder = await RawClient.OpenTlsAsync(server.TlsPort!.Value, Trusting(certs, stranger.Client));
            await intruder.SendAsync(new MqttConnectPacket { ClientId = "intruder" });
            Assert.Null(await intruder.ReceiveAsync());
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
        }
    }
}
