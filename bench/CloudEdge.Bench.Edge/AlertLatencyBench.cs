using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudEdge.DeviceSdk;
using CloudEdge.Mqtt;
using CloudEdge.Mqtt.Broker;
using CloudEdge.Testing.Platform;

namespace CloudEdge.Bench.Edge;

/// <summary>
/// Target 3: sensor publish (our DeviceSdk client, QoS 1) -> edge agent process (embedded broker, pipeline, uplink)
/// -> Silo process -> the device twin's alert total, on loopback. Baseline: one alert item POSTed straight to the
/// Silo's uplink route, until the twin shows it (the same poll).
/// </summary>
internal static class AlertLatencyBench
{
    private const string Gateway = "gw-bench";
    private const int DeviceCount = 10;
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(5);

    public static async Task RunAsync(int alerts)
    {
        using var budget = new CancellationTokenSource(Budget);
        var ct = budget.Token;
        var dir = RepositoryLayout.NewTempDirectory("cloudedge-bench-latency");
        var key = "bench-signing-key-" + Guid.NewGuid().ToString("N");
        var devices = Enumerable.Range(0, DeviceCount).Select(i => $"lat-{i:D4}").ToArray();
        SiloProcess? silo = null;
        EdgeAgentProcess? agent = null;
        var clients = new List<MqttClient>();
        try
        {
            silo = await SiloProcess.StartAsync(new SiloSettings(Path.Combine(dir, "silo"), key));
            var admin = await silo.MintTokenAsync("admin-1", "admin");
            var gatewayToken = await silo.MintTokenAsync(Gateway, "gateway");
            using var api = silo.Client(admin);
            using (var owner = await api.PostAsJsonAsync("api/v1/users", new { userId = "admin-1", email = "ops@example.com", displayName = "Ops", requestId = Guid.NewGuid().ToString() }, ct))
            {
                if (owner.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException(await owner.Content.ReadAsStringAsync(ct));
            }
            foreach (var device in devices.Append("lat-base"))
            {
                using var created = await api.PostAsJsonAsync("api/v1/devices", new { deviceId = device, gatewayId = Gateway, kind = "vibration", model = "sim", requestId = Guid.NewGuid().ToString() }, ct);
                if (created.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException(await created.Content.ReadAsStringAsync(ct));
            }

            // Baseline: the Silo's own uplink round trip, one alert item per POST, then the same twin poll.
            using var gatewayHttp = silo.Client(gatewayToken);
            var baseline = new List<double>(alerts);
            for (var i = 0; i < alerts && !ct.IsCancellationRequested; i++)
            {
                var sw = Stopwatch.StartNew();
                var item = new
                {
                    id = $"{Gateway}:lat-base:{i + 1}", type = "alert", deviceId = "lat-base", seq = i + 1,
                    traceparent = $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01",
                    alert = new { at = DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), kind = "vibration", value = 40.0, score = 0.99, threshold = 0.5, modelVersion = "v1", readingSeq = i + 1 },
                };
                var body = Gzip(JsonSerializer.Serialize(new { items = new[] { item } }));
                using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/gateways/{Gateway}/uplink") { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Content.Headers.ContentEncoding.Add("gzip");
                using var response = await gatewayHttp.SendAsync(request, ct);
                if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"uplink {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
                await WaitAlertsAsync(api, "lat-base", i + 1, ct);
                baseline.Add(sw.Elapsed.TotalMilliseconds);
            }

            // The edge agent process: plain MQTT on loopback, device passwords, short uplink batch delay.
            var users = Path.Combine(dir, "users.txt");
            await File.WriteAllLinesAsync(users, devices.Select(d => $"{d}:{MqttPasswordHasher.Hash("pw-" + d, 1000)}"), ct);
            agent = await EdgeAgentProcess.StartAsync(new EdgeAgentSettings(Gateway, Path.Combine(dir, "agent"), silo.Url, gatewayToken, users)
            {
                WindowLength = TimeSpan.FromMinutes(1),
                Configuration = new Dictionary<string, string> { ["EdgeAgent:Uplink:BatchDelay"] = "00:00:00.005" },
            });
            foreach (var device in devices)
            {
                clients.Add(await ConnectAsync(device, agent, ct));
            }
            var seq = new long[DeviceCount];
            var random = new Random(3);
            async Task NormalAsync(int d, int count)
            {
                for (var j = 0; j < count; j++)
                {
                    var value = Math.Round(2.5 + random.NextDouble() * 0.3 - 0.15, 2);
                    await clients[d].PublishReadingAsync(devices[d], new SensorReading(devices[d], "vibration", value, "mm/s", DateTimeOffset.UtcNow, ++seq[d]), cancellationToken: ct);
                }
            }
            // History first: the model scores a reading against the device's last 32.
            for (var d = 0; d < DeviceCount; d++) await NormalAsync(d, 40);
            await Task.Delay(500, ct);

            var edge = new List<double>(alerts);
            var totals = new long[DeviceCount];
            for (var d = 0; d < DeviceCount; d++) totals[d] = await AlertTotalAsync(api, devices[d], ct);
            for (var i = 0; i < alerts && !ct.IsCancellationRequested; i++)
            {
                var d = i % DeviceCount;
                var sw = Stopwatch.StartNew();
                await clients[d].PublishReadingAsync(devices[d], new SensorReading(devices[d], "vibration", 40.0, "mm/s", DateTimeOffset.UtcNow, ++seq[d]), cancellationToken: ct);
                totals[d] = await WaitAlertsAsync(api, devices[d], totals[d] + 1, ct);
                edge.Add(sw.Elapsed.TotalMilliseconds);
                // Settle the device's history so its next spike is again a lone one.
                await NormalAsync(d, 3);
            }
            await Task.Delay(300, ct);
            long finalTotal = 0;
            for (var d = 0; d < DeviceCount; d++) finalTotal += await AlertTotalAsync(api, devices[d], ct);
            Console.WriteLine($"latency: {edge.Count} spikes published, {finalTotal} alerts on the twins (a surplus means a settling reading after a spike was flagged too)");

            Report("baseline: POST one alert to the Silo's uplink -> twin shows it", baseline);
            Report("edge: sensor publish -> agent -> Silo -> twin shows the alert", edge);
            var p99 = Percentile(edge, 0.99);
            Console.WriteLine($"latency ratio edge/baseline: p50 {Percentile(edge, 0.5) / Percentile(baseline, 0.5):F1}x, p99 {p99 / Percentile(baseline, 0.99):F1}x; target p99 <= 100 ms: {(p99 <= 100 ? "MET" : "MISSED")}");
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
            if (agent is not null) await agent.DisposeAsync();
            if (silo is not null) await silo.DisposeAsync();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void Report(string what, List<double> ms) =>
        Console.WriteLine($"{what}: n={ms.Count} p50 {Percentile(ms, 0.5):F1} ms, p99 {Percentile(ms, 0.99):F1} ms, max {ms.DefaultIfEmpty().Max():F1} ms");

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }

    private static byte[] Gzip(string json)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(Encoding.UTF8.GetBytes(json));
        return output.ToArray();
    }

    private static async Task<MqttClient> ConnectAsync(string device, EdgeAgentProcess agent, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            if (agent.Process.HasExited) throw new InvalidOperationException("The edge agent exited.\n" + agent.Process.Output);
            var client = new MqttClient(new MqttClientOptions
            {
                Host = "127.0.0.1", Port = agent.MqttPort, Tls = MqttTlsOptions.Disabled, ClientId = device, UserName = device, Password = "pw-" + device,
            });
            try
            {
                await client.ConnectAsync(ct);
                return client;
            }
            catch (Exception) when (DateTime.UtcNow < deadline && !ct.IsCancellationRequested)
            {
                await client.DisposeAsync();
                await Task.Delay(200, ct);
            }
        }
    }

    private static async Task<long> AlertTotalAsync(HttpClient api, string device, CancellationToken ct)
    {
        var state = await api.GetFromJsonAsync<JsonElement>($"api/v1/devices/{device}", ct);
        return state.TryGetProperty("alerts", out var a) && a.ValueKind == JsonValueKind.Object ? a.GetProperty("total").GetInt64() : 0;
    }

    /// <summary>Polls the twin until its alert total reaches <paramref name="total"/> (bounded: 10 s per alert).</summary>
    private static async Task<long> WaitAlertsAsync(HttpClient api, string device, long total, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            var now = await AlertTotalAsync(api, device, ct);
            if (now >= total) return now;
            await Task.Delay(1, ct);
        }
        throw new TimeoutException($"{device}: alert total did not reach {total} in 10 s");
    }
}
