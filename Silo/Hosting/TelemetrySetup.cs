using CloudEdge.Telemetry;

namespace CloudEdge.Silo.Hosting;

/// <summary>
/// The silo's part in the shared telemetry setup (Telemetry/README.md): JSON logs carrying TraceId/SpanId, and
/// traces and metrics of these sources and meters exported over OTLP when an endpoint is configured.
/// </summary>
internal static class TelemetrySetup
{
    public static readonly string[] Sources = ["CloudEdge.Runtime", "CloudEdge.Grains", "Microsoft.AspNetCore", "System.Net.Http", SiloMetrics.Name];

    public static readonly string[] Meters =
    [
        "CloudEdge.Runtime", "CloudEdge.Grains", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.RateLimiting", "Microsoft.AspNetCore.Authentication", "System.Net.Http", SiloMetrics.Name,
    ];

    public static void AddSiloTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<SiloMetrics>();
        builder.AddCloudEdgeTelemetry(new TelemetrySettings { DefaultServiceName = "cloudedge-silo", Sources = Sources, Meters = Meters });
    }
}
