using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using CloudEdge.DeviceSdk;
using CloudEdge.Testing.Platform;

namespace CloudEdge.Bench.Live;

/// <summary>How the publish -> SSE bench runs (the command line sets these).</summary>
internal sealed record PublishToSseSettings
{
    /// <summary>Anomalous readings timed at the edge.</summary>
    public int Alerts { get; init; } = 400;

    /// <summary>Alert items POSTed straight to the uplink route (the baseline).</summary>
    public int BaselineAlerts { get; init; } = 200;

    /// <summary>Sensors, each one MQTT connection; every fourth is a vibration sensor, whose every 10th reading is a spike.</summary>
    public int Devices { get; init; } = 100;

    /// <summary>Readings per second per sensor.</summary>
    public double Rate { get; init; } = 10;

    /// <summary>The edge agent's EdgeAgent:Uplink:BatchDelay; null runs the agent with its default (200 ms, which alerts skip).</summary>
    public TimeSpan? BatchDelay { get; init; }

    /// <summary>The edge agent's window length (tools/run-platform.sh and docker-compose.yml use 10 s; the agent's default is 60 s).</summary>
    public TimeSpan WindowLength { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Sensor publish -> SSE event, on loopback with the real processes: a Silo and an edge agent (embedded broker,
/// pipeline, uplink). The sensors are our DeviceSdk client in this process (one QoS 1 connection each, paced
/// readings of their kind, so the load is counted exactly); the vibration sensors spike, and a browser-less
/// client on <c>/api/v1/live/alerts</c> matches each alert event to its spike by (device, readingSeq). Baseline
/// in the same run and under the same load: an alert item POSTed straight to the Silo's uplink route until the
/// same client sees it.
/// </summary>
internal static class PublishToSseBench
{
    private const int SpikeEvery = 10;
    private const int HistoryReadings = 40;
    private const string BaselineDevice = "base-0001";
    private static readonly TimeSpan WaitPerAlert = TimeSpan.FromSeconds(10);

    /// <summary>A normal reading per kind (the simulator's kind order): level, noise, unit; vibration spikes to 40 mm/s.</summary>
    private static readonly (string Kind, double Level, double Noise, string Unit)[] Kinds =
    [
        ("temperature", 21, 0.1, "C"), ("humidity", 45, 0.5, "%RH"), ("pressure", 1013.25, 0.2, "hPa"), ("vibration", 2.5, 0.15, "mm/s"),
    ];

    public static async Task RunAsync(PublishToSseSettings settings, CancellationToken cancellationToken)
    {
        var invariant = CultureInfo.InvariantCulture;
        var options = new LocalPlatformOptions
        {
            Devices = settings.Devices,
            WindowLength = settings.WindowLength,
            // Empty unless asked: the launcher's own default shortens the batch delay, the bench measures the agent as shipped.
            AgentConfiguration = settings.BatchDelay is { } delay
                ? new Dictionary<string, string> { ["EdgeAgent:Uplink:BatchDelay"] = delay.ToString("c", invariant) }
                : new Dictionary<string, string>(),
        };
        var batchDelay = settings.BatchDelay is { } set ? $"{set.TotalMilliseconds} ms" : "the agent's default";
        Console.WriteLine($"latency: starting the Silo and the edge agent, registering {settings.Devices + 1} devices (uplink batch delay {batchDelay}, windows {settings.WindowLength.TotalSeconds} s)");
        await using var platform = await LocalPlatform.StartAsync(options);
        using (var admin = platform.AdminClient())
        {
            await Provisioning.RegisterDevicesAsync(admin, options.OwnerId, options.GatewayId, [BaselineDevice], cancellationToken);
        }

        var pending = new ConcurrentDictionary<(string, long), Pending>();
        var edge = new Latencies();
        var baseline = new Latencies();
        var puback = new Latencies();
        var slowest = new ConcurrentBag<(double Milliseconds, DateTimeOffset PublishedAt)>();
        var alertEvents = 0;
        using var http = SseSubscriber.CreateClient(platform.Silo.Url);
        await using var subscriber = SseSubscriber.Open(http, "api/v1/live/alerts", platform.AdminToken, (_, e) =>
        {
            Interlocked.Increment(ref alertEvents);
            if (AlertEvents.Key(e.Data) is { } key && pending.TryRemove(key, out var p))
            {
                var ms = Latencies.Milliseconds(p.StartedAt, e.ArrivedAt);
                p.Into.Add(ms);
                p.Arrived?.TrySetResult();
                if (p.Into == edge)
                {
                    slowest.Add((ms, p.PublishedAt));
                }
            }
        });
        await subscriber.Ready.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);

        using var stopSensors = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var spikes = new SpikeBudget(settings.Alerts);
        var readings = 0L;
        var clients = new List<MqttClient>();
        try
        {
            foreach (var device in platform.DeviceIds)
            {
                var client = new MqttClient(new MqttClientOptions
                {
                    Host = "127.0.0.1", Port = platform.Agent.MqttPort, Tls = MqttTlsOptions.Disabled,
                    ClientId = device, UserName = device, Password = platform.DevicePassword,
                });
                await client.ConnectAsync(cancellationToken);
                clients.Add(client);
            }

            var sensors = clients.Select((client, i) => Task.Run(
                () => SensorLoopAsync(client, platform.DeviceIds[i], i, settings.Rate, spikes, pending, edge, puback, () => Interlocked.Increment(ref readings), stopSensors.Token),
                CancellationToken.None)).ToList();
            var loadStarted = Stopwatch.GetTimestamp();

            // Warm-up: every sensor fills its 32-reading history before anything is timed.
            await Task.Delay(TimeSpan.FromSeconds((HistoryReadings / settings.Rate) + 2), cancellationToken);

            Console.WriteLine($"latency: baseline, {settings.BaselineAlerts} alert items POSTed to the uplink route, under load");
            using (var gateway = platform.Silo.Client(platform.GatewayToken))
            {
                for (var i = 1; i <= settings.BaselineAlerts; i++)
                {
                    var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    pending[(BaselineDevice, i)] = new Pending(Stopwatch.GetTimestamp(), DateTimeOffset.UtcNow, baseline, arrived);
                    await UplinkAlerts.PostAsync(gateway, options.GatewayId, BaselineDevice, i, cancellationToken);
                    await arrived.Task.WaitAsync(WaitPerAlert, cancellationToken);
                }
            }

            var vibration = platform.DeviceIds.Where((_, i) => i % Kinds.Length == 3).Count();
            Console.WriteLine($"latency: edge, {settings.Alerts} spikes from {vibration} vibration sensors, under load");
            spikes.Open();
            await spikes.AllSent.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
            var lastSpike = Stopwatch.GetTimestamp();
            while (edge.Count < settings.Alerts && Stopwatch.GetElapsedTime(lastSpike) < WaitPerAlert)
            {
                await Task.Delay(50, cancellationToken);
            }

            var loadSeconds = Stopwatch.GetElapsedTime(loadStarted).TotalSeconds;
            var rate = Interlocked.Read(ref readings) / loadSeconds;
            await stopSensors.CancelAsync();
            await Task.WhenAll(sensors);

            Console.WriteLine(string.Create(invariant,
                $"latency: load {rate:F0} readings/s over {loadSeconds:F0} s ({settings.Devices} sensors, {settings.Rate}/s each nominal, QoS 1); {alertEvents} alert events on the SSE stream"));
            Console.WriteLine($"baseline: POST an alert item to the Silo's uplink -> SSE event: {baseline.Describe()}");
            Console.WriteLine($"edge: sensor publish -> edge agent -> Silo -> SSE event: {edge.Describe()}; {settings.Alerts - edge.Count} spikes without an event");
            Console.WriteLine($"edge: publish -> PUBACK (journal commit) of the spikes: {puback.Describe()}");
            // Where the tail sits: how long after a window boundary (epoch-aligned, when every sensor's window closes at once) the slowest spikes left.
            var tail = slowest.OrderByDescending(s => s.Milliseconds).Take(Math.Max(1, edge.Count / 100))
                .Select(s => string.Create(invariant, $"{s.Milliseconds:F0} ms at +{s.PublishedAt.ToUnixTimeMilliseconds() % (long)settings.WindowLength.TotalMilliseconds} ms"));
            Console.WriteLine($"edge: slowest 1%, published that long after a window boundary: {string.Join(", ", tail)}");
            var p99 = edge.Percentile(0.99);
            Console.WriteLine(string.Create(invariant,
                $"latency ratio edge/baseline: p50 {edge.Percentile(0.5) / baseline.Percentile(0.5):F1}x, p99 {p99 / baseline.Percentile(0.99):F1}x; target p99 <= 50 ms: {(p99 <= 50 ? "MET" : "MISSED")}"));
        }
        finally
        {
            await stopSensors.CancelAsync();
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static async Task SensorLoopAsync(MqttClient client, string device, int index, double rate, SpikeBudget spikes,
        ConcurrentDictionary<(string, long), Pending> pending, Latencies edge, Latencies puback, Action counted, CancellationToken cancellationToken)
    {
        var (kind, level, noise, unit) = Kinds[index % Kinds.Length];
        var random = new Random(index);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / rate));
        // Publishes are not awaited one by one: a slow acknowledgement must not slow the schedule down.
        var inFlight = new List<Task>();
        long seq = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                seq++;
                // Vibration sensors spike in turn (the index offsets their 10-reading cycle), spread evenly in time.
                var spike = kind == "vibration" && seq > HistoryReadings && (seq + index) % SpikeEvery == 0 && spikes.TryTake();
                var value = spike ? 40.0 : Math.Round(level + (((random.NextDouble() * 2) - 1) * noise), 2);
                var started = Stopwatch.GetTimestamp();
                if (spike)
                {
                    pending[(device, seq)] = new Pending(started, DateTimeOffset.UtcNow, edge, null);
                }

                var publish = client.PublishReadingAsync(device, new SensorReading(device, kind, value, unit, DateTimeOffset.UtcNow, seq), cancellationToken: cancellationToken);
                counted();
                inFlight.RemoveAll(t => t.IsCompletedSuccessfully);
                inFlight.Add(spike ? TimeAcknowledgementAsync(publish, started, puback) : publish);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        try
        {
            await Task.WhenAll(inFlight);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Readings still unacknowledged when the run ended.
        }
    }

    private static async Task TimeAcknowledgementAsync(Task<MqttPublishResult> publish, long started, Latencies puback)
    {
        await publish;
        puback.Add(Latencies.Milliseconds(started, Stopwatch.GetTimestamp()));
    }

    /// <summary>A reading or item in flight: when it left, where its latency goes, and who waits for it.</summary>
    private sealed record Pending(long StartedAt, DateTimeOffset PublishedAt, Latencies Into, TaskCompletionSource? Arrived);

    /// <summary>How many spikes may still be sent, once opened; <see cref="AllSent"/> completes with the last.</summary>
    private sealed class SpikeBudget(int total)
    {
        private readonly TaskCompletionSource allSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int left = total;
        private volatile bool open;

        public Task AllSent => allSent.Task;

        public void Open() => open = true;

        public bool TryTake()
        {
            if (!open)
            {
                return false;
            }

            var now = Interlocked.Decrement(ref left);
            if (now == 0)
            {
                allSent.TrySetResult();
            }

            return now >= 0;
        }
    }
}
