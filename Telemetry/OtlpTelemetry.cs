using System.Globalization;
using Microsoft.Extensions.Configuration;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CloudEdge.Telemetry;

/// <summary>
/// The OpenTelemetry tracer and meter providers of one process, exporting over OTLP when an endpoint is configured
/// (<c>Telemetry:OtlpEndpoint</c> or <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>); without one nothing is built and nothing
/// listens. For processes without a generic host (the simulator): hosts use <see cref="TelemetryHostingExtensions"/>.
/// Disposing flushes what is still queued.
/// </summary>
public sealed class OtlpTelemetry : IDisposable
{
    private readonly TracerProvider? tracing;
    private readonly MeterProvider? metrics;

    private OtlpTelemetry(string serviceName, Uri? endpoint, OtlpExportProtocol protocol, TracerProvider? tracing, MeterProvider? metrics)
    {
        ServiceName = serviceName;
        Endpoint = endpoint;
        Protocol = protocol;
        this.tracing = tracing;
        this.metrics = metrics;
    }

    public bool Enabled => tracing is not null;

    public string ServiceName { get; }

    /// <summary>The collector's base URL; null when export is off.</summary>
    public Uri? Endpoint { get; }

    public OtlpExportProtocol Protocol { get; }

    /// <summary>Builds the providers from configuration; throws on an endpoint that is not an absolute http(s) URI or an unknown protocol.</summary>
    public static OtlpTelemetry Create(IConfiguration configuration, TelemetrySettings settings)
    {
        var export = OtlpExport.From(configuration, settings);
        if (export.Endpoint is null)
        {
            return new OtlpTelemetry(export.ServiceName, null, export.Protocol, null, null);
        }

        var resource = ResourceBuilder.CreateEmpty();
        export.Describe(resource);
        var tracing = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource([.. settings.Sources])
            .AddOtlpExporter(export.Traces).Build();
        var metrics = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter([.. settings.Meters])
            .AddOtlpExporter(export.Metrics).Build();
        return new OtlpTelemetry(export.ServiceName, export.Endpoint, export.Protocol, tracing, metrics);
    }

    /// <summary>Exports what is queued now (the batch processor otherwise waits for its schedule).</summary>
    public bool ForceFlush(TimeSpan timeout)
    {
        var milliseconds = (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue);
        var traced = tracing?.ForceFlush(milliseconds) ?? true;
        var measured = metrics?.ForceFlush(milliseconds) ?? true;
        return traced && measured;
    }

    public void Dispose()
    {
        tracing?.Dispose();
        metrics?.Dispose();
    }

    public override string ToString() => Enabled
        ? string.Create(CultureInfo.InvariantCulture, $"{ServiceName} -> {Endpoint} ({Protocol})")
        : $"{ServiceName} (no export)";
}
