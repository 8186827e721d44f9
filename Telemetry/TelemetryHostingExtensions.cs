using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CloudEdge.Telemetry;

/// <summary>How a host takes part: JSON console logs carrying trace ids, and the OTLP providers in its container.</summary>
public static class TelemetryHostingExtensions
{
    /// <summary>
    /// Replaces the log providers with JSON console logs whose scopes carry TraceId/SpanId/ParentId and, when an
    /// OTLP endpoint is configured, exports traces and metrics through OpenTelemetry.Extensions.Hosting: the
    /// process's own sources and meters, ASP.NET Core and HttpClient instrumentation, and runtime metrics. The
    /// host starts the providers before any work and flushes them when it stops. Without an endpoint nothing listens.
    /// </summary>
    public static IHostApplicationBuilder AddCloudEdgeTelemetry(this IHostApplicationBuilder builder, TelemetrySettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        builder.Logging.AddJsonConsoleWithTraceIds();
        var export = OtlpExport.From(builder.Configuration, settings);
        builder.Services.AddSingleton(export);
        builder.Services.AddHostedService<OtlpTelemetryStarter>();
        if (export.Endpoint is null)
        {
            return builder;
        }

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(export.Describe)
            .WithTracing(tracing => tracing
                .AddSource([.. settings.Sources])
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddOtlpExporter(export.Traces))
            .WithMetrics(metrics => metrics
                .AddMeter([.. settings.Meters])
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddOtlpExporter(export.Metrics));
        return builder;
    }

    /// <summary>JSON lines on the console, UTC timestamps, scopes included, each line carrying the current trace and span ids.</summary>
    public static ILoggingBuilder AddJsonConsoleWithTraceIds(this ILoggingBuilder logging)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.ClearProviders();
        logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });
        return logging;
    }
}

/// <summary>Says at start where export goes.</summary>
internal sealed partial class OtlpTelemetryStarter(OtlpExport export, ILogger<OtlpTelemetryStarter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (export.Endpoint is { } endpoint)
        {
            LogExporting(logger, export.ServiceName, export.Protocol.ToString(), endpoint);
        }
        else
        {
            LogNotExporting(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Exporting traces and metrics of {ServiceName} over OTLP ({Protocol}) to {Endpoint}")]
    private static partial void LogExporting(ILogger logger, string serviceName, string protocol, Uri endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "No OTLP endpoint configured (Telemetry:OtlpEndpoint or OTEL_EXPORTER_OTLP_ENDPOINT): traces and metrics are not exported")]
    private static partial void LogNotExporting(ILogger logger);
}
