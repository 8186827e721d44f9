using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Telemetry;

/// <summary>How a host takes part: JSON console logs carrying trace ids, and the OTLP providers in its container.</summary>
public static class TelemetryHostingExtensions
{
    /// <summary>
    /// Replaces the log providers with JSON console logs whose scopes carry TraceId/SpanId/ParentId, and registers
    /// <see cref="OtlpTelemetry"/> as a singleton built at host start (so the first request or reading is traced) and
    /// disposed, which flushes it, when the container is.
    /// </summary>
    public static IHostApplicationBuilder AddCloudEdgeTelemetry(this IHostApplicationBuilder builder, TelemetrySettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        builder.Logging.AddJsonConsoleWithTraceIds();
        builder.Services.AddSingleton(sp => OtlpTelemetry.Create(sp.GetRequiredService<IConfiguration>(), settings));
        builder.Services.AddHostedService<OtlpTelemetryStarter>();
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

/// <summary>Resolving <see cref="OtlpTelemetry"/> at start builds the providers before any work is traced, and says where export goes.</summary>
internal sealed partial class OtlpTelemetryStarter(OtlpTelemetry telemetry, ILogger<OtlpTelemetryStarter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (telemetry.Enabled)
        {
            LogExporting(logger, telemetry.ServiceName, telemetry.Protocol.ToString(), telemetry.Endpoint!);
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
