using CloudEdge.Telemetry;

namespace CloudEdge.Silo.Hosting;

/// <summary>
/// The silo's part in the shared telemetry setup (Telemetry/README.md): JSON logs carrying TraceId/SpanId, and
/// traces and metrics of these sources and meters exported over OTLP when an endpoint is configured.
/// </summary>
internal static class TelemetrySetup
{
    /// <summary>Orleans' grain call spans (with activity propagation), the grains' publish spans and the silo's own.</summary>
    public static readonly string[] Sources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application", "CloudEdge.Grains", SiloMetrics.Name];

    public static readonly string[] Meters =
    [
        "Microsoft.Orleans", "CloudEdge.Grains", "Microsoft.AspNetCore.RateLimiting", "Microsoft.AspNetCore.Authentication", SiloMetrics.Name,
    ];

    public static void AddSiloTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<SiloMetrics>();
        builder.AddCloudEdgeTelemetry(new TelemetrySettings { DefaultServiceName = "cloudedge-silo", Sources = Sources, Meters = Meters });
    }
}
