using System.Diagnostics;
using System.Diagnostics.Metrics;
using CloudEdge.Telemetry;
using CloudEdge.Testing.Otlp;
using Microsoft.Extensions.Configuration;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// The test collector (tests/CloudEdge.Testing/Otlp) against the real OpenTelemetry OTLP exporter, configured by our
/// Telemetry library as the hosts configure it: every decoded field is what the process recorded.
/// </summary>
public sealed class OtlpReceiverTests
{
    [Fact]
    public async Task Spans_exported_by_the_real_otlp_exporter_decode_field_by_field()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        var sourceName = "CloudEdge.Tests.Otlp." + Guid.NewGuid().ToString("N");
        using var source = new ActivitySource(sourceName, "3.1");
        using var meter = new Meter(sourceName);
        var counter = meter.CreateCounter<long>("cloudedge.test.count");

        var remoteParent = new ActivityContext(ActivityTraceId.CreateFromString("4bf92f3577b34da6a3ce929d0e0e4736"), ActivitySpanId.CreateFromString("00f067aa0ba902b7"),
            ActivityTraceFlags.Recorded, "vendor=value", isRemote: true);
        var linkA = new ActivityContext(ActivityTraceId.CreateFromString("0af7651916cd43dd8448eb211c80319c"), ActivitySpanId.CreateFromString("b7ad6b7169203331"), ActivityTraceFlags.Recorded, "congo=t61rcWkgMzE");
        var linkB = new ActivityContext(ActivityTraceId.CreateFromString("11111111111111111111111111111111"), ActivitySpanId.CreateFromString("2222222222222222"), ActivityTraceFlags.Recorded);
        Activity server, producer, batch;
        var telemetry = OtlpTelemetry.Create(Configuration(new()
        {
            // No trailing slash: the library must still post to {endpoint}/v1/traces.
            ["Telemetry:OtlpEndpoint"] = receiver.Endpoint.TrimEnd('/'),
            ["OTEL_SERVICE_NAME"] = "otlp-decoder-test",
            ["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=test,team=edge%20ops,malformed",
        }), new TelemetrySettings { DefaultServiceName = "unused", Sources = [sourceName], Meters = [sourceName], ServiceInstanceId = "instance-7" });
        using (telemetry)
        {
            Assert.True(telemetry.Enabled);
            server = source.StartActivity("GET /things/{id}", ActivityKind.Server, remoteParent)!;
            Assert.NotNull(server);
            server.SetTag("http.route", "/things/{id}");
            server.SetTag("cloudedge.count", 42L);
            server.SetTag("cloudedge.flag", true);
            server.SetTag("cloudedge.ratio", 0.25);
            producer = source.StartActivity("publish things", ActivityKind.Producer)!;
            producer.Stop();
            server.SetStatus(ActivityStatusCode.Error, "boom");
            server.Stop();
            batch = source.StartActivity("batch", ActivityKind.Consumer, new ActivityContext(), links: [new ActivityLink(linkA), new ActivityLink(linkB)])!;
            batch.Stop();
            counter.Add(3);
        }

        // Disposing flushed: the spans are there without waiting for the batch schedule.
        Assert.Empty(receiver.Errors);
        Assert.True(receiver.RequestCount("metrics") >= 1, "the meter provider exported on dispose");
        var spans = receiver.Spans.Where(s => s.Scope == sourceName).ToList();
        Assert.Equal(3, spans.Count);

        var s = Assert.Single(spans, x => x.Name == "GET /things/{id}");
        Assert.Equal("otlp-decoder-test", s.ServiceName);
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", s.TraceId);
        Assert.Equal(server.SpanId.ToHexString(), s.SpanId);
        Assert.Equal("00f067aa0ba902b7", s.ParentSpanId);
        Assert.Equal("vendor=value", s.TraceState);
        Assert.Equal(OtlpSpanKind.Server, s.Kind);
        Assert.Equal(UnixNanos(server.StartTimeUtc), s.StartTimeUnixNano);
        Assert.Equal(UnixNanos(server.StartTimeUtc + server.Duration), s.EndTimeUnixNano);
        Assert.Equal("/things/{id}", s.Attributes["http.route"]);
        Assert.Equal(42L, s.Attributes["cloudedge.count"]);
        Assert.Equal(true, s.Attributes["cloudedge.flag"]);
        Assert.Equal(0.25, s.Attributes["cloudedge.ratio"]);
        Assert.Equal(2, s.StatusCode); // STATUS_CODE_ERROR
        Assert.Empty(s.Links);
        Assert.Equal("otlp-decoder-test", s.Resource["service.name"]);
        Assert.Equal("instance-7", s.Resource["service.instance.id"]);
        Assert.Equal("test", s.Resource["deployment.environment"]);
        Assert.Equal("edge ops", s.Resource["team"]);
        Assert.Equal("opentelemetry", s.Resource["telemetry.sdk.name"]);

        var p = Assert.Single(spans, x => x.Name == "publish things");
        Assert.Equal(OtlpSpanKind.Producer, p.Kind);
        Assert.Equal(s.TraceId, p.TraceId);
        Assert.Equal(s.SpanId, p.ParentSpanId);
        Assert.Equal(producer.SpanId.ToHexString(), p.SpanId);
        Assert.Equal(0, p.StatusCode);

        var b = Assert.Single(spans, x => x.Name == "batch");
        Assert.Equal(OtlpSpanKind.Consumer, b.Kind);
        Assert.Null(b.ParentSpanId);
        Assert.Equal(batch.TraceId.ToHexString(), b.TraceId);
        Assert.Equal([new OtlpLink("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "congo=t61rcWkgMzE"), new OtlpLink("11111111111111111111111111111111", "2222222222222222", "")], b.Links);

        // The tree checks the platform tests use: the server span's parent is remote (never exported).
        var trace = receiver.Trace(s.TraceId);
        Assert.Equal([s.SpanId], TraceTree.Orphans(trace).Select(o => o.SpanId));
        Assert.Empty(TraceTree.Orphans(trace, externalParentSpanId: "00f067aa0ba902b7"));
        Assert.Equal([p.SpanId, s.SpanId], TraceTree.Ancestry(trace, p).Select(x => x.SpanId));
    }

    [Fact]
    public void Configuration_decides_export_service_name_and_protocol()
    {
        using var off = OtlpTelemetry.Create(Configuration(new() { ["OTEL_SERVICE_NAME"] = "from-env" }), new TelemetrySettings { DefaultServiceName = "default-name" });
        Assert.False(off.Enabled);
        Assert.Equal("from-env", off.ServiceName);

        using var named = OtlpTelemetry.Create(Configuration(new()
        {
            ["Telemetry:ServiceName"] = "from-config",
            ["OTEL_SERVICE_NAME"] = "from-env",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9/base",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc",
        }), new TelemetrySettings { DefaultServiceName = "default-name" });
        Assert.True(named.Enabled);
        Assert.Equal("from-config", named.ServiceName);
        Assert.Equal("http://127.0.0.1:9/base/", named.Endpoint!.AbsoluteUri);
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, named.Protocol);

        using var fromAttributes = OtlpTelemetry.Create(Configuration(new() { ["OTEL_RESOURCE_ATTRIBUTES"] = "service.name=attr-name" }), new TelemetrySettings { DefaultServiceName = "default-name" });
        Assert.Equal("attr-name", fromAttributes.ServiceName);

        Assert.Contains("not an absolute http(s) URI", Assert.Throws<InvalidOperationException>(() =>
            OtlpTelemetry.Create(Configuration(new() { ["Telemetry:OtlpEndpoint"] = "collector:4318" }), new TelemetrySettings { DefaultServiceName = "x" })).Message);
        Assert.Contains("http/json", Assert.Throws<InvalidOperationException>(() =>
            OtlpTelemetry.Create(Configuration(new() { ["Telemetry:OtlpEndpoint"] = "http://127.0.0.1:9/", ["Telemetry:OtlpProtocol"] = "http/json" }), new TelemetrySettings { DefaultServiceName = "x" })).Message);
    }

    private static IConfiguration Configuration(Dictionary<string, string?> values) => new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    private static ulong UnixNanos(DateTime utc) => (ulong)(utc - DateTime.UnixEpoch).Ticks * 100;
}
