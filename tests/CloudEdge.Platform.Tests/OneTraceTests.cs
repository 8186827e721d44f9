using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CloudEdge.Testing.Otlp;
using CloudEdge.Testing.Sse;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// One trace, sensor to screen (docs/tracing.md): the simulator (or mosquitto_pub), the edge agent and the Silo run as
/// separate processes exporting over OTLP to a collector this test runs; an SSE client follows the device. The alert's
/// SSE event carries the trace the sensor started, and that trace's spans form one connected tree across the processes.
/// </summary>
public sealed class OneTraceTests
{
    private const string Simulator = "cloudedge-simulator";
    private const string EdgeAgent = "cloudedge-edge-agent";
    private const string Silo = "cloudedge-silo";

    [Fact]
    public async Task An_alert_is_one_trace_from_the_simulated_sensor_through_the_agent_and_the_silo_to_the_sse_client()
    {
        await using var otlp = await OtlpReceiver.StartAsync();
        await using var platform = await LocalPlatform.StartAsync(Options(otlp, devices: 1));
        var device = platform.DeviceIds[0];
        await using var sse = await SseFollower.OpenAsync(platform.Silo.Url, $"api/v1/live/devices/{device}", platform.AdminToken);

        // Enough readings at 5% anomalies (seeded) that spikes land after the model's 32-reading history fills.
        await using (var simulator = SimulatorProcess.Start(platform.Simulator(1) with { Rate = 20, Count = 160, AnomalyRate = 0.05, Seed = 7 }))
        {
            Assert.True(await simulator.WaitForExitAsync(TimeSpan.FromMinutes(3)) == 0, simulator.Output);
        }

        var alert = await sse.WaitForAsync(e => e.Event == "alert", "an alert event on the device's live stream\n" + platform.Diagnostics());
        var traceId = TraceIdOf(alert);

        // Every hop's spans arrive (batch export every 200 ms) and hang together.
        var trace = await WaitForTraceAsync(otlp, traceId, [Simulator, EdgeAgent, Silo], s => s.Service == Silo && s.Name.StartsWith("sse send", StringComparison.Ordinal), platform);
        var root = Assert.Single(TraceTree.Roots(trace));
        Assert.True(root is { ServiceName: Simulator, Name: "publish", Kind: OtlpSpanKind.Producer }, $"the sensor's publish span starts the trace:\n{TraceTree.Describe(trace)}");
        Assert.Empty(TraceTree.Orphans(trace));
        Assert.Equal(root.SpanId, TraceParentSpanId((string?)alert.Data["alert"]?["traceParent"]));

        // The hops: ingest and inference on the agent, the uplinked item and the SSE send in the Silo, each under the reading.
        foreach (var (service, name) in new[] { (EdgeAgent, "edge.ingest"), (EdgeAgent, "edge.inference"), (Silo, "uplink.item alert"), (Silo, "sse send device") })
        {
            var span = trace.FirstOrDefault(s => s.ServiceName == service && s.Name == name);
            Assert.True(span is not null, $"no {service} span '{name}' in the alert's trace:\n{TraceTree.Describe(trace)}");
            Assert.Equal(root.SpanId, TraceTree.Ancestry(trace, span!)[^1].SpanId);
        }

        // The uplink request carried a traceparent: the Silo's item span links to the request, whose trace is the agent's batch.
        var item = trace.First(s => s.Name == "uplink.item alert");
        var requestLink = Assert.Single(item.Links);
        var request = otlp.Span(requestLink.SpanId);
        Assert.True(request is { ServiceName: Silo, Name: "uplink" }, $"the linked span {requestLink.SpanId} is the Silo's uplink request span: {request}");
        var requestTrace = otlp.Trace(request!.TraceId);
        var batch = TraceTree.Ancestry(requestTrace, request)[^1];
        Assert.True(batch is { ServiceName: EdgeAgent, Name: "edge.uplink.batch", ParentSpanId: null }, $"the uplink request continues the agent's batch:\n{TraceTree.Describe(requestTrace)}");
        Assert.Contains(batch.Links, l => l.TraceId == traceId);
        Assert.Empty(TraceTree.Orphans(requestTrace));

        // Summaries are traces of their own, linked to their readings' publish spans, which were exported.
        await Wait.UntilAsync(() => otlp.Spans.Any(s => s.Name == "edge.window.summary" && s.Links.Count > 0), "a summary span with links\n" + platform.Diagnostics());
        foreach (var summary in otlp.Spans.Where(s => s.Name == "edge.window.summary" && s.Links.Count > 0))
        {
            Assert.Null(summary.ParentSpanId);
            foreach (var link in summary.Links)
            {
                await Wait.UntilAsync(() => otlp.Span(link.SpanId) is not null, $"the reading span {link.SpanId} a summary links to");
                var reading = otlp.Span(link.SpanId)!;
                Assert.True(reading is { ServiceName: Simulator, Name: "publish" } && reading.TraceId == link.TraceId, $"summary link -> {reading}");
            }
        }

        Assert.Empty(otlp.Errors);
    }

    [Fact]
    public async Task A_traceparent_given_by_mosquitto_pub_on_mqtt5_or_in_the_311_json_is_the_alerts_trace_up_to_the_silo()
    {
        await using var otlp = await OtlpReceiver.StartAsync();
        await using var platform = await LocalPlatform.StartAsync(Options(otlp, devices: 2));
        await using var sse = await SseFollower.OpenAsync(platform.Silo.Url, "api/v1/live/alerts", platform.AdminToken);
        var cases = new[]
        {
            (Device: platform.DeviceIds[0], Protocol: "mqttv5", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            (Device: platform.DeviceIds[1], Protocol: "mqttv311", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        };

        foreach (var (device, protocol, traceParent) in cases)
        {
            // A steady history first (no trace context), then one spike carrying the given context.
            var now = DateTimeOffset.UtcNow;
            var history = string.Join('\n', Enumerable.Range(1, 40).Select(i => Reading(device, 24 + 0.1 * Math.Sin(i), i, now)));
            await PublishAsync(platform, device, protocol, history, lines: true);
            if (protocol == "mqttv5")
            {
                await PublishAsync(platform, device, protocol, Reading(device, 38, 41, now), lines: false, ["-D", "publish", "user-property", "traceparent", traceParent]);
            }
            else
            {
                await PublishAsync(platform, device, protocol, Reading(device, 38, 41, now, traceParent), lines: false);
            }
        }

        foreach (var (device, protocol, traceParent) in cases)
        {
            var traceId = traceParent[3..35];
            var parent = traceParent[36..52];
            var alert = await sse.WaitForAsync(e => e.Event == "alert" && (string?)e.Data["deviceId"] == device, $"the {protocol} alert of {device}\n{platform.Diagnostics()}");
            Assert.Equal(traceId, TraceIdOf(alert));
            Assert.Equal(traceParent, (string?)alert.Data["alert"]?["traceParent"]);

            // mosquitto_pub exports nothing: its parent is the trace's given root, and everything else hangs off it.
            var trace = await WaitForTraceAsync(otlp, traceId, [EdgeAgent, Silo], s => s.Service == Silo && s.Name.StartsWith("sse send", StringComparison.Ordinal), platform, parent);
            // The agent exports in batches: its ingest span can come in a later batch than its inference span.
            await Wait.UntilAsync(() => otlp.Trace(traceId).Any(s => s.ServiceName == EdgeAgent && s.Name == "edge.ingest"), $"the edge.ingest span of {traceId}");
            trace = otlp.Trace(traceId);
            Assert.Empty(TraceTree.Orphans(trace, parent));
            Assert.Contains(trace, s => s.ServiceName == EdgeAgent && s.Name == "edge.ingest" && s.ParentSpanId == parent);
            Assert.Contains(trace, s => s.ServiceName == Silo && s.Name == "uplink.item alert" && s.ParentSpanId == parent);
            Assert.Contains(trace, s => s.ServiceName == Silo && s.Name == "sse send alerts");
        }

        Assert.Empty(otlp.Errors);
    }

    private static LocalPlatformOptions Options(OtlpReceiver otlp, int devices) => new()
    {
        Devices = devices,
        WindowLength = TimeSpan.FromSeconds(2),
        Environment = new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.Endpoint,
            // The SDK's batch processor reads this (ms): spans reach the collector within a fraction of a second.
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        },
    };

    /// <summary>Waits until the trace holds spans of every service, a span matching <paramref name="last"/>, and no orphan.</summary>
    private static async Task<IReadOnlyList<OtlpSpan>> WaitForTraceAsync(OtlpReceiver otlp, string traceId, string[] services, Func<(string Service, string Name), bool> last, LocalPlatform platform, string? externalParent = null)
    {
        IReadOnlyList<OtlpSpan> trace = [];
        try
        {
            await Wait.UntilAsync(() =>
            {
                trace = otlp.Trace(traceId);
                return services.All(service => trace.Any(s => s.ServiceName == service))
                    && trace.Any(s => last((s.ServiceName, s.Name)))
                    && TraceTree.Orphans(trace, externalParent).Count == 0;
            }, "the whole trace " + traceId, TimeSpan.FromMinutes(2));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\nreceived:\n{TraceTree.Describe(trace)}\norphans:\n{TraceTree.Describe(TraceTree.Orphans(trace, externalParent))}\n{platform.Diagnostics()}", e);
        }

        return trace;
    }

    private static string TraceIdOf(SseEvent alert)
    {
        var traceId = (string?)alert.Data["traceId"];
        Assert.True(traceId is { Length: 32 }, $"the alert event carries a trace id: {alert.Data.ToJsonString()}");
        return traceId!;
    }

    private static string? TraceParentSpanId(string? traceParent) => traceParent is { Length: >= 55 } ? traceParent[36..52] : null;

    private static string Reading(string device, double value, long seq, DateTimeOffset ts, string? traceParent = null) =>
        $$"""{"deviceId":"{{device}}","kind":"temperature","value":{{value.ToString("R", CultureInfo.InvariantCulture)}},"unit":"C","ts":"{{ts.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)}}","seq":{{seq}}{{(traceParent is null ? "" : $",\"traceparent\":\"{traceParent}\"")}}}""";

    /// <summary>mosquitto_pub as the device (client id and user name = device id), QoS 1; <paramref name="lines"/>: one message per line of the payload.</summary>
    private static async Task PublishAsync(LocalPlatform platform, string device, string protocol, string payload, bool lines, IEnumerable<string>? extra = null)
    {
        var file = Path.Combine(platform.Directory, $"payload-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, payload + "\n");
        List<string> arguments =
        [
            "-h", "127.0.0.1", "-p", platform.Agent.MqttPort.ToString(CultureInfo.InvariantCulture), "-V", protocol, "-q", "1",
            "-i", device, "-u", device, "-P", platform.DevicePassword, "-t", $"devices/{device}/telemetry",
        ];
        arguments.AddRange(extra ?? []);
        // -l publishes each line of stdin as a message; -s sends the whole of stdin as one.
        var command = "exec mosquitto_pub \"$@\" " + (lines ? "-l" : "-s") + " < " + Quote(file);
        var result = await ExternalProcess.RunAsync("bash", ["-c", command, "mosquitto_pub", .. arguments], TimeSpan.FromMinutes(1));
        Assert.True(result.ExitCode == 0, $"mosquitto_pub exited with {result.ExitCode}: {result.Stderr}");
    }

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
