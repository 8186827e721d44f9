using System.Diagnostics;
using System.Globalization;
using CloudEdge.DeviceSdk;
using CloudEdge.Testing;
using CloudEdge.Testing.Platform;

namespace CloudEdge.Bench.Edge;

/// <summary>
/// Readings/s end to end through MQTT: the real edge agent process (its embedded broker, the pipeline's journal group
/// commit, inference, windows and outbox), fed by MQTT 5 clients of the device SDK publishing the SDK's wire format at
/// QoS 1. A PUBACK comes after the journal commit, which holds the batch's scoring, windows and outbox writes, so the
/// last PUBACK means every reading went through. <c>--qemu</c> runs the self-contained linux-arm64 publish under
/// qemu-aarch64 instead (for information: emulation, not an ARM box).
/// </summary>
internal static class MqttIngestBench
{
    private const string Password = "bench-password";

    public static int Devices { get; set; } = 200;
    public static int ReadingsPerDevice { get; set; } = 1000;
    /// <summary>QoS 1 publishes each client keeps unacknowledged (the broker's receive maximum allows more).</summary>
    public static int InFlight { get; set; } = 64;

    public static async Task<double> RunAsync(bool qemu)
    {
        var dir = RepositoryLayout.NewTempDirectory("cloudedge-bench-mqtt");
        try
        {
            IReadOnlyList<string>? command = null;
            if (qemu) command = ["qemu-aarch64", "-E", "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1", await PublishArm64Async(dir)];

            var fleet = new SensorFleet(Devices, 0.01, 42);
            var deviceIds = Enumerable.Range(0, Devices).Select(SensorFleet.DeviceId).ToArray();
            var start = DateTimeOffset.UtcNow;
            var payloads = new byte[Devices][][];
            for (var d = 0; d < Devices; d++)
            {
                payloads[d] = new byte[ReadingsPerDevice][];
                for (var i = 0; i < ReadingsPerDevice; i++) payloads[d][i] = fleet.Next(d, i % 4, start.AddSeconds(i / 4)).Payload;
            }
            var (users, acl) = await Provisioning.WriteBrokerCredentialsAsync(Path.Combine(dir, "broker"), deviceIds, Password);
            // Nothing listens at the Silo URL: the outbox fills and the uplink retries in the background, as during an outage.
            await using var agent = await EdgeAgentProcess.StartAsync(new EdgeAgentSettings("gw-bench", Path.Combine(dir, "agent"), $"http://127.0.0.1:{RepositoryLayout.FreePort()}/", "no-silo", users)
            {
                AclFile = acl,
                WindowLength = TimeSpan.FromSeconds(5),
                Command = command,
                Configuration = new Dictionary<string, string> { ["EdgeAgent:Ota:Enabled"] = "false", ["Logging:LogLevel:Default"] = "Error" },
                LogFile = Path.Combine(dir, "agent.log"),
            }, qemu ? TimeSpan.FromMinutes(10) : TimeSpan.FromMinutes(2));

            // Under emulation the broker's pbkdf2 check of each password takes seconds: connect all at once, patiently.
            var clients = deviceIds.Select(id => new MqttClient(new MqttClientOptions
            {
                Host = "127.0.0.1", Port = agent.MqttPort, Tls = MqttTlsOptions.Disabled, ClientId = id, UserName = id, Password = Password,
                ConnectTimeout = qemu ? TimeSpan.FromMinutes(5) : TimeSpan.FromSeconds(30),
            })).ToArray();
            await Task.WhenAll(clients.Select(c => c.ConnectAsync()));
            try
            {
                // Warm-up: JIT, the ONNX session's first runs, SQLite's page cache; the measured part follows at once.
                var warm = Math.Min(40, ReadingsPerDevice / 4);
                await PublishAllAsync(clients, deviceIds, payloads, 0, warm);
                var sw = Stopwatch.StartNew();
                var (published, failed) = await PublishAllAsync(clients, deviceIds, payloads, warm, ReadingsPerDevice);
                var elapsed = sw.Elapsed;
                var rate = published / elapsed.TotalSeconds;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"mqtt ingest{(qemu ? " (linux-arm64 agent under qemu-aarch64)" : "")}: {Devices} MQTT 5 clients, QoS 1, {InFlight} in flight each, {published:N0} readings in {elapsed.TotalSeconds:F2} s = {rate:N0} readings/s, {failed} refused"));
                if (!agent.Process.HasExited && failed > 0) Console.WriteLine($"  agent log: {agent.Process.LogFile}");
                return rate;
            }
            finally
            {
                foreach (var client in clients) await client.DisposeAsync();
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Every client publishes its readings [from, to) with a window of unacknowledged QoS 1 publishes.</summary>
    private static async Task<(long Published, long Failed)> PublishAllAsync(MqttClient[] clients, string[] deviceIds, byte[][][] payloads, int from, int to)
    {
        long published = 0, failed = 0;
        await Task.WhenAll(clients.Select((client, d) => Task.Run(async () =>
        {
            var topic = TelemetryJson.TopicFor(deviceIds[d]);
            var window = new Queue<Task<MqttPublishResult>>(InFlight);
            for (var i = from; i < to; i++)
            {
                if (window.Count == InFlight) Count(await window.Dequeue());
                window.Enqueue(client.PublishAsync(topic, payloads[d][i], MqttQualityOfService.AtLeastOnce));
            }
            while (window.Count > 0) Count(await window.Dequeue());
        })));
        return (published, failed);

        void Count(MqttPublishResult result)
        {
            if (result.IsSuccess) Interlocked.Increment(ref published);
            else Interlocked.Increment(ref failed);
        }
    }

    /// <summary><c>dotnet publish EdgeAgent -r linux-arm64 --self-contained</c>, as a gateway gets it.</summary>
    private static async Task<string> PublishArm64Async(string dir)
    {
        var output = Path.Combine(dir, "arm64-agent");
        var project = Path.Combine(RepositoryLayout.Root, "EdgeAgent", "CloudEdge.EdgeAgent.csproj");
        var result = await ExternalProcess.RunAsync("dotnet", ["publish", project, "-c", "Release", "-r", "linux-arm64", "--self-contained", "-o", output, "-nologo", "-v", "quiet"], TimeSpan.FromMinutes(10));
        if (result.ExitCode != 0) throw new InvalidOperationException($"dotnet publish -r linux-arm64 failed: {result.StdoutText}{result.Stderr}");
        return Path.Combine(output, "CloudEdge.EdgeAgent");
    }
}
