using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using CloudEdge.Testing.Platform;

namespace CloudEdge.Bench.Live;

/// <summary>How the fan-out bench runs (the command line sets these).</summary>
internal sealed record FanOutSettings
{
    public int Subscribers { get; init; } = 1000;

    /// <summary>Alerts published while every subscriber listens (one per device, in turn).</summary>
    public int Events { get; init; } = 100;

    /// <summary>Devices; the per-device subscribers spread over them evenly.</summary>
    public int Devices { get; init; } = 100;

    /// <summary>Alert items POSTed per second (one per request).</summary>
    public double EventRate { get; init; } = 50;
}

/// <summary>
/// Many concurrent SSE subscribers on one Silo process: half on <c>/api/v1/live/alerts</c>, half on
/// <c>/api/v1/live/devices/{id}</c> spread over the devices. Alert items POSTed to the uplink route fan out to
/// them; every subscriber must get every event of its stream. Reports the Silo's memory (VmRSS and its
/// anonymous part from /proc; the Silo exports no GC heap figure outside OTLP) with 0 subscribers (baseline),
/// with all of them connected and after delivery, and the delivery latency (POST start -> event read) with
/// 1 subscriber (baseline) and with all of them.
/// </summary>
internal static class FanOutBench
{
    private const string Gateway = "gw-fan";
    private const string Owner = "fan-owner";

    public static async Task RunAsync(FanOutSettings settings, CancellationToken cancellationToken)
    {
        var directory = RepositoryLayout.NewTempDirectory("cloudedge-bench-fanout");
        var key = "bench-signing-key-" + Guid.NewGuid().ToString("N");
        try
        {
            await using var silo = await SiloProcess.StartAsync(new SiloSettings(Path.Combine(directory, "silo"), key)
            {
                Configuration = new Dictionary<string, string>
                {
                    // One token subject holds every connection here; the default (16) guards a real caller.
                    ["Live:MaxConnectionsPerCaller"] = (settings.Subscribers + 16).ToString(CultureInfo.InvariantCulture),
                },
                LogFile = Path.Combine(directory, "silo.log"),
            });
            var admin = await silo.MintTokenAsync("admin", "admin");
            var devices = Enumerable.Range(1, settings.Devices).Select(i => $"fan-{i:D4}").ToList();
            using (var api = silo.Client(admin))
            {
                await Provisioning.RegisterDevicesAsync(api, Owner, Gateway, devices, cancellationToken);
            }

            using var gateway = silo.Client(await silo.MintTokenAsync(Gateway, "gateway"));
            using var http = SseSubscriber.CreateClient(silo.Url);
            var seq = new long[devices.Count];

            // Warm-up (JIT, grain activations, stream heads), then the baseline with one subscriber.
            var single = await DeliverAsync(http, admin, gateway, devices, seq, 1, settings.Events, settings.EventRate, cancellationToken);
            await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
            var idle = ProcessMemory.Of(silo.Process.Id);
            Console.WriteLine($"fanout: Silo with 0 subscribers (baseline): {idle}");
            Console.WriteLine($"fanout: baseline, 1 subscriber on /live/alerts: delivery {single.Latency.Describe()}");

            var all = await DeliverAsync(http, admin, gateway, devices, seq, settings.Subscribers, settings.Events, settings.EventRate, cancellationToken,
                connected => Console.WriteLine($"fanout: {settings.Subscribers} subscribers connected in {connected.TotalSeconds:F1} s: {ProcessMemory.Of(silo.Process.Id)}"),
                () => ProcessMemory.Of(silo.Process.Id));
            var perConnection = (all.Connected.RssKiB - idle.RssKiB) / (double)settings.Subscribers;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fanout: {settings.Subscribers} subscribers: {all.Delivered} of {all.Expected} events delivered ({all.Complete} subscribers complete, {all.Failed} failed); delivery {all.Latency.Describe()}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fanout: Silo memory connected {all.Connected}, peak during delivery {all.Peak}; {perConnection:F1} KiB RSS per connection over the 0-subscriber baseline"));
            await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
            Console.WriteLine($"fanout: after the {settings.Subscribers} subscribers closed: {ProcessMemory.Of(silo.Process.Id)}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fanout ratio {settings.Subscribers} subscribers / 1 subscriber: delivery p50 {all.Latency.Percentile(0.5) / single.Latency.Percentile(0.5):F1}x, p99 {all.Latency.Percentile(0.99) / single.Latency.Percentile(0.99):F1}x"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// Opens <paramref name="subscribers"/> streams (the first on the fleet's alerts, then alternating per-device and
    /// fleet), publishes <paramref name="events"/> alerts, waits until every subscriber has every event of its
    /// stream (or a generous deadline), and closes them.
    /// </summary>
    private static async Task<Delivery> DeliverAsync(HttpClient http, string admin, HttpClient gateway, List<string> devices, long[] seq,
        int subscribers, int events, double rate, CancellationToken cancellationToken,
        Action<TimeSpan>? onConnected = null, Func<ProcessMemory>? memory = null)
    {
        var sent = new ConcurrentDictionary<(string, long), long>();
        var latency = new Latencies();
        var received = new ConcurrentDictionary<SseSubscriber, int>();
        var streams = new List<(SseSubscriber Subscriber, string? Device)>();
        void OnEvent(SseSubscriber subscriber, SseEvent e)
        {
            if (AlertEvents.Key(e.Data) is { } k && sent.TryGetValue(k, out var startedAt))
            {
                latency.Add(Latencies.Milliseconds(startedAt, e.ArrivedAt));
                received.AddOrUpdate(subscriber, 1, (_, n) => n + 1);
            }
        }

        var opening = Stopwatch.GetTimestamp();
        try
        {
            for (var i = 0; i < subscribers; i++)
            {
                var device = i % 2 == 1 ? devices[(i / 2) % devices.Count] : null;
                streams.Add((SseSubscriber.Open(http, device is null ? "api/v1/live/alerts" : $"api/v1/live/devices/{device}", admin, OnEvent), device));
                if (i % 50 == 49)
                {
                    // Batches of 50, so the Silo's accept queue and the grain activations keep pace.
                    await Task.WhenAll(streams.Skip(i - 49).Select(s => s.Subscriber.Ready)).WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);
                }
            }

            await Task.WhenAll(streams.Select(s => s.Subscriber.Ready)).WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);
            onConnected?.Invoke(Stopwatch.GetElapsedTime(opening));
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            var connected = memory?.Invoke() ?? default;
            var peak = connected;

            var published = new List<string>();
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / rate));
            for (var e = 0; e < events && await timer.WaitForNextTickAsync(cancellationToken); e++)
            {
                var d = e % devices.Count;
                var itemSeq = ++seq[d];
                sent[(devices[d], itemSeq)] = Stopwatch.GetTimestamp();
                await UplinkAlerts.PostAsync(gateway, Gateway, devices[d], itemSeq, cancellationToken);
                published.Add(devices[d]);
                if (memory is not null && e % 10 == 0)
                {
                    peak = Max(peak, memory());
                }
            }

            int Expected((SseSubscriber Subscriber, string? Device) s) => s.Device is null ? published.Count : published.Count(p => p == s.Device);
            var expected = streams.Sum(Expected);
            var waiting = Stopwatch.GetTimestamp();
            while (received.Values.Sum() < expected && Stopwatch.GetElapsedTime(waiting) < TimeSpan.FromSeconds(60))
            {
                if (memory is not null)
                {
                    peak = Max(peak, memory());
                }

                await Task.Delay(100, cancellationToken);
            }

            var complete = streams.Count(s => received.GetValueOrDefault(s.Subscriber) == Expected(s));
            return new Delivery(latency, expected, received.Values.Sum(), complete, streams.Count(s => s.Subscriber.Failure is not null), connected, peak);
        }
        finally
        {
            foreach (var (subscriber, _) in streams)
            {
                await subscriber.DisposeAsync();
            }
        }
    }

    private static ProcessMemory Max(ProcessMemory a, ProcessMemory b) => a.RssKiB >= b.RssKiB ? a : b;

    private sealed record Delivery(Latencies Latency, int Expected, int Delivered, int Complete, int Failed, ProcessMemory Connected, ProcessMemory Peak);
}
