using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CloudEdge.EdgeAgent;
using CloudEdge.EdgePipeline;
using CloudEdge.Mqtt;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Builder;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>The composed agent (EdgeAgentHost, as Program.cs runs it) from a config file and flags, end to end to an uplink endpoint.</summary>
public sealed class HostTests
{
    private const string Password = "device-password-1";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task The_agent_runs_from_a_config_file_and_flags_and_delivers_a_devices_alert_to_the_silo()
    {
        using var dir = new TempDirectory();
        var state = new SiloState { GatewayId = "gw-host" };
        await using var silo = await FakeSilo.StartAsync(state);
        var usersFile = Path.Combine(dir.Path, "users.txt");
        await File.WriteAllTextAsync(usersFile, $"sensor-9:{MqttPasswordHasher.Hash(Password, iterations: 1000)}\nsensor-8:{MqttPasswordHasher.Hash(Password, iterations: 1000)}\n");
        var config = Path.Combine(dir.Path, "agent.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "EdgeAgent": {
                "GatewayId": "gw-host",
                "DataDirectory": "{{Path.Combine(dir.Path, "data")}}",
                "WindowLength": "00:00:02",
                "Broker": { "ListenAddress": "127.0.0.1", "UsersFile": "{{usersFile}}" },
                "Uplink": { "Token": "{{state.Token}}", "BatchDelay": "00:00:00.050", "OutageDelay": "00:00:00.200" },
                "Ota": { "Enabled": false }
              }
            }
            """);
        var port = FreePort();
        await using var app = EdgeAgentHost.Build(["--config", config, "--silo-url", silo.Url, "--mqtt-port", port.ToString(CultureInfo.InvariantCulture)]);
        await app.StartAsync();
        try
        {
            await using var client = await RawMqttClient.ConnectAsync(port, "sensor-9", "sensor-9", Password);
            var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            for (var i = 1; i <= 40; i++)
            {
                var value = (1.1 + 0.05 * Math.Sin(i)).ToString("R", CultureInfo.InvariantCulture);
                Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-9/telemetry",
                    $$"""{"deviceId":"sensor-9","kind":"vibration","value":{{value}},"unit":"mm/s","ts":"{{now}}","seq":{{i}}}"""));
            }
            var trace = "00-11111111111111111111111111111111-2222222222222222-01";
            Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-9/telemetry",
                $$"""{"deviceId":"sensor-9","kind":"vibration","value":13.5,"unit":"mm/s","ts":"{{now}}","seq":41}""", trace));
            // The default ACL: a device publishes only under its own devices/{id}/.
            Assert.Equal(MqttReasonCode.NotAuthorized, await client.PublishAsync("devices/sensor-8/telemetry",
                $$"""{"deviceId":"sensor-8","kind":"vibration","value":1,"unit":"mm/s","ts":"{{now}}","seq":1}"""));

            // The alert reaches the Silo at once with the reading's trace; the window's summary follows.
            await Wait.UntilAsync(() => state.Snapshot().Any(i => i.Item.GetProperty("type").GetString() == "alert"), "alert applied");
            await Wait.UntilAsync(() => state.Snapshot().Any(i => i.Item.GetProperty("type").GetString() == "summary"), "summary applied");
            List<(string Id, System.Text.Json.JsonElement Item)> applied;
            applied = state.Snapshot();
            var alert = applied.First(i => i.Item.GetProperty("type").GetString() == "alert");
            Assert.Equal(trace, alert.Item.GetProperty("traceparent").GetString());
            Assert.Equal($"gw-host:sensor-9:{alert.Item.GetProperty("seq").GetInt64()}", alert.Id);
            // Per device the seq runs 1, 2, 3, ... over summaries and alerts alike, in order.
            Assert.Equal(Enumerable.Range(1, applied.Count).Select(i => (long)i), applied.Select(i => i.Item.GetProperty("seq").GetInt64()));
            Assert.Equal(41, alert.Item.GetProperty("alert").GetProperty("readingSeq").GetInt64());
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public void The_agent_refuses_to_start_without_a_gateway_id()
    {
        using var dir = new TempDirectory();
        using var app = (IDisposable)EdgeAgentHost.Build(["--data-dir", dir.Path, "--silo-url", "https://silo.invalid/", "--token", "t", "--mqtt-port", "0"]);
        var services = ((WebApplication)app).Services;
        var e = Assert.Throws<ArgumentException>(() => services.GetService(typeof(TelemetryPipeline)));
        Assert.Contains("GatewayId", e.Message);
    }

    [Fact]
    public async Task Devices_reach_the_agent_over_mqtt_tls_and_the_agent_reaches_the_silo_over_https()
    {
        using var dir = new TempDirectory();
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=edge-test", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        var san = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension([new("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certFile = Path.Combine(dir.Path, "server.pem");
        var keyFile = Path.Combine(dir.Path, "server.key");
        await File.WriteAllTextAsync(certFile, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());

        var state = new SiloState { GatewayId = "gw-tls" };
        using var serverCertificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null);
        await using var silo = await FakeSilo.StartAsync(state, certificate: serverCertificate);
        Assert.StartsWith("https://", silo.Url);
        var port = FreePort();
        await using var app = EdgeAgentHost.Build([
            "--gateway-id", "gw-tls", "--data-dir", Path.Combine(dir.Path, "data"), "--silo-url", silo.Url, "--token", state.Token,
            "--silo-ca", certFile, "--listen", "127.0.0.1", "--mqtt-port", "0", "--mqtts-port", port.ToString(CultureInfo.InvariantCulture),
            "--tls-cert", certFile, "--tls-key", keyFile,
            $"--EdgeAgent:Broker:Users:sensor-tls={MqttPasswordHasher.Hash(Password, iterations: 1000)}",
            "--EdgeAgent:Ota:Enabled=false", "--EdgeAgent:Uplink:BatchDelay=00:00:00.050"]);
        await app.StartAsync();
        try
        {
            var tls = new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString(),
            };
            await using var client = await RawMqttClient.ConnectAsync(port, "sensor-tls", "sensor-tls", Password, tls: tls);
            var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            for (var i = 1; i <= 40; i++)
            {
                Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-tls/telemetry",
                    $$"""{"deviceId":"sensor-tls","kind":"pressure","value":{{(1013 + 0.1 * Math.Sin(i)).ToString("R", CultureInfo.InvariantCulture)}},"unit":"hPa","ts":"{{now}}","seq":{{i}}}"""));
            }
            Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-tls/telemetry",
                $$"""{"deviceId":"sensor-tls","kind":"pressure","value":960,"unit":"hPa","ts":"{{now}}","seq":41}"""));
            await Wait.UntilAsync(() => state.Snapshot().Any(i => i.Item.GetProperty("type").GetString() == "alert"), "alert applied over HTTPS");
        }
        finally
        {
            await app.StopAsync();
        }
    }
}
