using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CloudEdge.DeviceSdk;
using CloudEdge.Testing;
using Old = CloudEdge.Bench.DeviceSdk.Baseline;
using Wire = CloudEdge.Mqtt;

// Device SDK publish throughput: one client, QoS 1, MQTT 5, telemetry-sized payloads, against a private mosquitto.
// The SDK on MQTTnet and the hand-written client it replaced (Baseline/, frozen at commit c709fc7) run in the same
// process against the same broker, alternating, so the ratio compares like with like.
var messages = Argument("--messages", 100_000);
var rounds = Argument("--rounds", 5);
var window = Argument("--window", 1_000);

var port = FreePort();
var config = Path.Combine(Path.GetTempPath(), $"cloudedge-bench-devicesdk-{port}.conf");
File.WriteAllText(config, $"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n");
using var mosquitto = ExternalProcess.Start("mosquitto", ["-c", config]);
await Wait.UntilAsync(async () => await AcceptsAsync(port), $"mosquitto listening on {port}");

var payload = TelemetryJson.Serialize(new SensorReading("bench-0001", SensorKinds.Temperature, 21.5, "C", DateTimeOffset.UtcNow, 1));
const string topic = "devices/bench-0001/telemetry";
Console.WriteLine($"device SDK publish throughput: {messages:N0} x QoS 1, {payload.Length} B payload, window {window}, {rounds} rounds, mosquitto (Debian) on 127.0.0.1:{port}");

// Warm-up: JIT and connection paths of both clients.
await RunMqttNetAsync(port, topic, payload, Math.Min(messages, 10_000), window);
await RunBaselineAsync(port, topic, payload, Math.Min(messages, 10_000), window);

var mqttNet = new List<Result>();
var baseline = new List<Result>();
for (var round = 0; round < rounds; round++)
{
    // Alternate who goes first so neither always runs on a warmer broker.
    if (round % 2 == 0)
    {
        mqttNet.Add(await RunMqttNetAsync(port, topic, payload, messages, window));
        baseline.Add(await RunBaselineAsync(port, topic, payload, messages, window));
    }
    else
    {
        baseline.Add(await RunBaselineAsync(port, topic, payload, messages, window));
        mqttNet.Add(await RunMqttNetAsync(port, topic, payload, messages, window));
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  round {round + 1}: MQTTnet SDK {mqttNet[^1].PerSecond:N0} msg/s ({mqttNet[^1].BytesPerMessage:N0} B/msg), baseline {baseline[^1].PerSecond:N0} msg/s ({baseline[^1].BytesPerMessage:N0} B/msg)"));
}
var m = Median(mqttNet);
var b = Median(baseline);
Console.WriteLine();
Console.WriteLine("| client (QoS 1, one connection) | msg/s (median) | allocated B/msg | ratio |");
Console.WriteLine("|---|---|---|---|");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| DeviceSdk on MQTTnet 5.2 | {m.PerSecond:N0} | {m.BytesPerMessage:N0} | {m.PerSecond / b.PerSecond:F2}x |"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| hand-written client (baseline) | {b.PerSecond:N0} | {b.BytesPerMessage:N0} | 1.00x |"));
mosquitto.Kill();
File.Delete(config);
return 0;

static async Task<Result> RunMqttNetAsync(int port, string topic, byte[] payload, int count, int window)
{
    await using var client = new MqttClient(new MqttClientOptions { Host = "127.0.0.1", Port = port, Tls = MqttTlsOptions.Disabled, ClientId = "bench-mqttnet", OfflineQueueCapacity = window * 2 });
    await client.ConnectAsync();
    return await MeasureAsync(count, window, () => client.PublishAsync(topic, payload, MqttQualityOfService.AtLeastOnce), r => r.IsSuccess);
}

static async Task<Result> RunBaselineAsync(int port, string topic, byte[] payload, int count, int window)
{
    await using var client = new Old.MqttClient(new Old.MqttClientOptions { Host = "127.0.0.1", Port = port, Tls = Old.MqttTlsOptions.Disabled, ClientId = "bench-baseline", OfflineQueueCapacity = window * 2 });
    await client.ConnectAsync();
    return await MeasureAsync(count, window, () => client.PublishAsync(topic, payload, Wire.MqttQualityOfService.AtLeastOnce), r => r.IsSuccess);
}

/// <summary>Keeps <paramref name="window"/> publishes outstanding until <paramref name="count"/> are acknowledged.</summary>
static async Task<Result> MeasureAsync<T>(int count, int window, Func<Task<T>> publish, Func<T, bool> ok)
{
    using var slots = new SemaphoreSlim(window);
    var failures = 0;
    var pending = new List<Task>(count);
    GC.Collect();
    var allocated = GC.GetTotalAllocatedBytes(precise: true);
    var started = Stopwatch.GetTimestamp();
    for (var i = 0; i < count; i++)
    {
        await slots.WaitAsync();
        pending.Add(publish().ContinueWith(t =>
        {
            if (!t.IsCompletedSuccessfully || !ok(t.Result)) Interlocked.Increment(ref failures);
            slots.Release();
        }, TaskContinuationOptions.ExecuteSynchronously));
    }
    await Task.WhenAll(pending);
    var elapsed = Stopwatch.GetElapsedTime(started);
    var bytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
    if (failures > 0) throw new InvalidOperationException($"{failures} of {count} publishes failed.");
    return new Result(count / elapsed.TotalSeconds, (double)bytes / count);
}

static Result Median(List<Result> results)
{
    var sorted = results.OrderBy(r => r.PerSecond).ToList();
    return sorted[sorted.Count / 2];
}

static async Task<bool> AcceptsAsync(int port)
{
    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    try
    {
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return true;
    }
    catch (SocketException)
    {
        return false;
    }
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

int Argument(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

internal sealed record Result(double PerSecond, double BytesPerMessage);
