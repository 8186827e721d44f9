using System.Buffers;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text.Json;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Uplink;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Bench.Edge;

/// <summary>
/// Target 2: gzip uplink request bytes over the raw MQTT payload bytes the sensors sent, for the same readings:
/// 60 s windows at 1 reading/s per sensor, the simulator's 1% anomaly rate, the real pipeline, outbox and
/// <see cref="UplinkSender"/> posting to a small loopback endpoint that answers as the Silo does (docs/uplink.md).
/// </summary>
internal static class UplinkBytesBench
{
    private const int Devices = 100;
    private const int Seconds = 600;
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(4);

    public static async Task RunAsync()
    {
        using var budget = new CancellationTokenSource(Budget);
        var endpoint = new CountingSilo();
        await using var app = await endpoint.StartAsync();
        // Window-aligned start so exactly Seconds / 60 windows per sensor close.
        var clock = new SteppedClock(new DateTimeOffset(2026, 11, 21, 18, 0, 0, TimeSpan.Zero));
        await using var parts = new PipelineParts(clock, TimeSpan.FromMinutes(1));
        await parts.Pipeline.StartAsync(budget.Token);
        var fleet = new SensorFleet(Devices, 0.01, 7);
        long rawBytes = 0, readings = 0;
        var sw = Stopwatch.StartNew();
        for (var s = 0; s < Seconds; s++)
        {
            var now = clock.GetUtcNow();
            var accepts = new List<Task<AcceptResult>>(Devices * 4);
            for (var d = 0; d < Devices; d++)
            {
                for (var k = 0; k < 4; k++)
                {
                    var p = fleet.Next(d, k, now);
                    rawBytes += p.Payload.Length;
                    readings++;
                    if (TelemetryPayload.TryParse(new ReadOnlySequence<byte>(p.Payload), p.DeviceId, out var reading, out var detail) != TelemetryError.None)
                    {
                        throw new InvalidOperationException($"payload refused: {detail}");
                    }
                    accepts.Add(parts.Pipeline.AcceptAsync(reading!, waitForJournal: true, budget.Token).AsTask());
                }
            }
            foreach (var result in await Task.WhenAll(accepts))
            {
                if (result != AcceptResult.Accepted) throw new InvalidOperationException($"reading not accepted: {result}");
            }
            clock.Advance(TimeSpan.FromSeconds(1));
        }
        // Close the last windows: the pipeline's tick at the end of the last minute.
        clock.Tick();
        await parts.Pipeline.StopAsync(budget.Token);

        var uplinkOptions = new UplinkOptions { SiloUrl = endpoint.Url, Token = "bench-token" };
        using var http = new SiloHttp(uplinkOptions, parts.Options.GatewayId);
        var sender = new UplinkSender(http, parts.Outbox, parts.Wakeup, uplinkOptions, parts.Telemetry, TimeProvider.System);
        var requests = 0;
        while (!budget.IsCancellationRequested && requests < 100_000)
        {
            var (outcome, _) = await sender.SendOnceAsync(budget.Token);
            if (outcome == UplinkAttempt.Idle) break;
            if (outcome != UplinkAttempt.Sent) throw new InvalidOperationException($"uplink failed: {outcome}");
            requests++;
        }
        sender.Dispose();
        if (parts.Outbox.Count() != 0) throw new InvalidOperationException($"{parts.Outbox.Count()} items left in the outbox");

        var ratio = (double)endpoint.BodyBytes / rawBytes;
        Console.WriteLine($"bytes: {Devices} devices x 4 kinds x {Seconds} s at 1 reading/s, 60 s windows, anomaly rate 0.01 ({fleet.Anomalies} anomalies started), {sw.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"bytes: raw MQTT payload bytes {rawBytes:N0} ({readings:N0} readings, {(double)rawBytes / readings:F1} B each)");
        Console.WriteLine($"bytes: uplink gzip request bodies {endpoint.BodyBytes:N0} in {endpoint.Requests} requests ({endpoint.Items:N0} items: {endpoint.Summaries:N0} summaries, {endpoint.Alerts:N0} alerts, {endpoint.Other} other); uncompressed JSON {endpoint.JsonBytes:N0}");
        Console.WriteLine($"bytes: ratio uplink/raw {ratio:P2} (uncompressed JSON/raw {(double)endpoint.JsonBytes / rawBytes:P2}); target <= 5%: {(ratio <= 0.05 ? "MET" : "MISSED")}");
    }

    /// <summary>The Silo's uplink route reduced to what the sender needs (bearer check, gzip body, per-item results), counting bytes.</summary>
    private sealed class CountingSilo
    {
        private readonly Lock _gate = new();

        public string Url { get; private set; } = "";
        public long BodyBytes { get; private set; }
        public long JsonBytes { get; private set; }
        public int Requests { get; private set; }
        public long Items { get; private set; }
        public long Summaries { get; private set; }
        public long Alerts { get; private set; }
        public long Other { get; private set; }

        public async Task<WebApplication> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            app.MapPost("/api/v1/gateways/{gatewayId}/uplink", async (string gatewayId, HttpContext context) =>
            {
                if (context.Request.Headers.Authorization != "Bearer bench-token" || gatewayId != "gw-bench")
                {
                    context.Response.StatusCode = 401;
                    return;
                }
                using var raw = new MemoryStream();
                await context.Request.Body.CopyToAsync(raw, context.RequestAborted);
                raw.Position = 0;
                using var json = new MemoryStream();
                using (var gzip = new GZipStream(raw, CompressionMode.Decompress, leaveOpen: true)) await gzip.CopyToAsync(json, context.RequestAborted);
                json.Position = 0;
                using var document = await JsonDocument.ParseAsync(json, cancellationToken: context.RequestAborted);
                var results = new List<object>();
                long summaries = 0, alerts = 0, other = 0;
                foreach (var item in document.RootElement.GetProperty("items").EnumerateArray())
                {
                    results.Add(new { id = item.GetProperty("id").GetString(), status = "applied" });
                    switch (item.GetProperty("type").GetString())
                    {
                        case "summary": summaries++; break;
                        case "alert": alerts++; break;
                        default: other++; break;
                    }
                }
                lock (_gate)
                {
                    BodyBytes += raw.Length;
                    JsonBytes += json.Length;
                    Requests++;
                    Items += results.Count;
                    Summaries += summaries;
                    Alerts += alerts;
                    Other += other;
                }
                await context.Response.WriteAsJsonAsync(new { results }, context.RequestAborted);
            });
            await app.StartAsync();
            Url = $"http://127.0.0.1:{new Uri(app.Urls.First()).Port}/";
            return app;
        }
    }
}
