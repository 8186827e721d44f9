using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudEdge.Mqtt.Broker;

namespace CloudEdge.Mqtt.Tests;

/// <summary>The BrokerHost command line, run as its own process with users, ACL and TLS files.</summary>
public sealed class BrokerHostTests
{
    internal static string BrokerHostDll()
    {
        // tests/CloudEdge.Mqtt.Tests/bin/<Configuration>/net10.0/ -> Mqtt/BrokerHost/bin/<Configuration>/net10.0/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory);
        var dir = baseDir;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudEdge.sln"))) dir = dir.Parent;
        var dll = Path.Combine(dir!.FullName, "Mqtt", "BrokerHost", "bin", baseDir.Parent!.Name, baseDir.Name, "CloudEdge.Mqtt.BrokerHost.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the test project builds it first.");
        return dll;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task The_cli_serves_tcp_and_mutual_tls_with_users_and_acl_files()
    {
        using var certs = new TestCertificates("sensor-9");
        var users = Path.Combine(certs.Directory, "users.txt");
        await File.WriteAllTextAsync(users, "ops:" + MqttPasswordHasher.Hash("ops-pw", 10_000) + "\n");
        var acl = Path.Combine(certs.Directory, "acl.txt");
        await File.WriteAllTextAsync(acl, "# devices write their own subtree\npublish * devices/{username}/#\nall ops #\n");
        int port = FreePort(), tlsPort = FreePort();

        using var host = ExternalProcess.Start("dotnet",
        [
            BrokerHostDll(), "--port", port.ToString(), "--tls-port", tlsPort.ToString(),
            "--cert", Path.Combine(certs.Directory, "server.pem"), "--key", Path.Combine(certs.Directory, "server.key"),
            "--client-ca", certs.AuthorityPem, "--users", users, "--acl", acl, "--verbose",
        ]);
        await WaitListeningAsync(port);
        await WaitListeningAsync(tlsPort);

        using var sub = ExternalProcess.Start("mosquitto_sub", ["-h", "127.0.0.1", "-p", port.ToString(), "-V", "mqttv5", "-u", "ops", "-P", "ops-pw", "-t", "devices/#", "-C", "2", "-W", "60", "-F", "%t|%p"]);
        // Both messages are retained, so they arrive whether or not the subscriber had subscribed yet.
        var (exit, _, err) = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(), "-u", "ops", "-P", "ops-pw", "-t", "devices/ops/ready", "-r", "-m", "ready"]);
        Assert.True(exit == 0, err);

        // Certificate identity (CN=sensor-9) over TLS may publish under devices/sensor-9/ only.
        (exit, _, err) = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", tlsPort.ToString(), "--cafile", certs.AuthorityPem, "--cert", certs.ClientCertPem, "--key", certs.ClientKeyPem, "-V", "mqttv5", "-t", "devices/sensor-9/temp", "-q", "1", "-r", "-m", "19.5"]);
        Assert.True(exit == 0, err);
        var (subExit, stdout, subErr) = await sub.WaitAsync();
        if (subExit != 0)
        {
            host.Kill();
            var (_, hostOut, hostErr) = await host.WaitAsync();
            Assert.Fail($"mosquitto_sub: {subErr} {Encoding.UTF8.GetString(stdout)}; broker: {Encoding.UTF8.GetString(hostOut)} {hostErr}");
        }
        Assert.Equal(["devices/ops/ready|ready", "devices/sensor-9/temp|19.5"], Encoding.UTF8.GetString(stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        // No credentials: refused (anonymous is off by default).
        (exit, _, err) = await ExternalProcess.RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(), "-t", "x", "-m", "x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("not authori", err, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Hash_password_prints_a_hash_the_broker_accepts()
    {
        var (exit, stdout, err) = await ExternalProcess.RunAsync("dotnet", [BrokerHostDll(), "hash-password", "pa55"]);
        Assert.True(exit == 0, err);
        var hash = Encoding.UTF8.GetString(stdout).Trim();
        Assert.True(MqttPasswordHasher.Verify("pa55"u8, hash));
    }

    internal static async Task WaitListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
