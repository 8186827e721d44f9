using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CloudEdge.Silo.Hosting;

/// <summary>
/// Structured JSON logs carrying TraceId/SpanId, and OpenTelemetry traces and metrics exported over
/// OTLP when an endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or Telemetry:OtlpEndpoint).
/// OpenTelemetry.Extensions.Hosting does not restore here, so the providers are built with the SDK
/// and owned by a singleton the container disposes at shutdown (which flushes them).
/// </summary>
internal static class TelemetrySetup
{
    public static readonly string[] Sources = ["CloudEdge.Runtime", "Microsoft.AspNetCore", "System.Net.Http", SiloMetrics.Name];

    public static readonly string[] Meters =
    [
        "CloudEdge.Runtime", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.RateLimiting", "Microsoft.AspNetCore.Authentication", "System.Net.Http", SiloMetrics.Name,
    ];

    public static void AddSiloTelemetry(this WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });

        builder.Services.AddSingleton<SiloMetrics>();
        builder.Services.AddSingleton(sp => OtlpTelemetry.Create(sp.GetRequiredService<IConfiguration>(), sp.GetRequiredService<ILogger<OtlpTelemetry>>()));
        builder.Services.AddHostedService<OtlpTelemetryStarter>();
    }
}

/// <summary>The OpenTelemetry providers; null members when no OTLP endpoint is configured.</summary>
internal sealed class OtlpTelemetry(TracerProvider? tracing, MeterProvider? metrics) : IDisposable
{
    public bool Enabled => tracing is not null;

    public static OtlpTelemetry Create(IConfiguration configuration, ILogger logger)
    {
        var endpoint = configuration["Telemetry:OtlpEndpoint"] ?? configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return new OtlpTelemetry(null, null);
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
        {
            throw new InvalidOperationException($"The OTLP endpoint '{endpoint}' is not an absolute URI.");
        }

        var protocol = string.Equals(configuration["Telemetry:OtlpProtocol"] ?? configuration["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc", StringComparison.OrdinalIgnoreCase)
            ? OtlpExportProtocol.Grpc
            : OtlpExportProtocol.HttpProtobuf;
        var serviceName = configuration["Telemetry:ServiceName"] ?? configuration["OTEL_SERVICE_NAME"] ?? "cloudedge-silo";
        var resource = ResourceBuilder.CreateDefault().AddService(serviceName);

        // With HTTP/protobuf the exporter posts to the base endpoint plus the signal's path.
        Uri Signal(string path) => protocol == OtlpExportProtocol.Grpc ? uri : new Uri(uri, path);

        var tracing = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(resource)
            .AddSource(TelemetrySetup.Sources)
            .AddOtlpExporter(o => { o.Endpoint = Signal("v1/traces"); o.Protocol = protocol; })
            .Build();
        var metrics = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(resource)
            .AddMeter(TelemetrySetup.Meters)
            .AddOtlpExporter(o => { o.Endpoint = Signal("v1/metrics"); o.Protocol = protocol; })
            .Build();
        logger.LogInformation("Exporting traces and metrics over OTLP ({Protocol}) to {Endpoint}.", protocol, uri);
        return new OtlpTelemetry(tracing, metrics);
    }

    public void Dispose()
    {
        tracing?.Dispose();
        metrics?.Dispose();
    }
}

/// <summary>
/// Resolving <see cref="OtlpTelemetry"/> builds the providers: this runs at host start so that the
/// first request is traced, and the container disposes them (flushing) at shutdown.
/// </summary>
internal sealed class OtlpTelemetryStarter(OtlpTelemetry telemetry, ILogger<OtlpTelemetryStarter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!telemetry.Enabled)
        {
            logger.LogInformation("No OTLP endpoint configured (Telemetry:OtlpEndpoint or OTEL_EXPORTER_OTLP_ENDPOINT): traces and metrics are not exported.");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
