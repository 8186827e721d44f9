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
/// listens. Disposing flushes what is still queued: OpenTelemetry.Extensions.Hosting does not restore here, so the
/// owner (the DI container of a host, or the simulator's <c>using</c>) is what ends the export.
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
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(settings);
        var attributes = ResourceAttributes(configuration["OTEL_RESOURCE_ATTRIBUTES"]);
        var serviceName = NonEmpty(configuration["Telemetry:ServiceName"]) ?? NonEmpty(configuration["OTEL_SERVICE_NAME"])
            ?? (attributes.TryGetValue("service.name", out var named) ? named as string : null) ?? settings.DefaultServiceName;
        var protocol = ParseProtocol(NonEmpty(configuration["Telemetry:OtlpProtocol"]) ?? NonEmpty(configuration["OTEL_EXPORTER_OTLP_PROTOCOL"]));
        var endpoint = NonEmpty(configuration["Telemetry:OtlpEndpoint"]) ?? NonEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (endpoint is null)
        {
            return new OtlpTelemetry(serviceName, null, protocol, null, null);
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"The OTLP endpoint '{endpoint}' is not an absolute http(s) URI.");
        }

        // A base URL without a trailing slash would lose its last segment when the signal path is appended.
        uri = uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        var resource = ResourceBuilder.CreateEmpty()
            .AddTelemetrySdk()
            .AddAttributes(attributes)
            .AddService(serviceName, serviceInstanceId: settings.ServiceInstanceId, autoGenerateServiceInstanceId: settings.ServiceInstanceId is null);

        // With HTTP/protobuf the exporter posts to the base URL plus the signal's path; gRPC takes the base URL.
        void Export(OtlpExporterOptions options, string signalPath)
        {
            options.Endpoint = protocol == OtlpExportProtocol.Grpc ? uri : new Uri(uri, signalPath);
            options.Protocol = protocol;
        }

        var tracing = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource([.. settings.Sources])
            .AddOtlpExporter(o => Export(o, "v1/traces")).Build();
        var metrics = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter([.. settings.Meters])
            .AddOtlpExporter(o => Export(o, "v1/metrics")).Build();
        return new OtlpTelemetry(serviceName, uri, protocol, tracing, metrics);
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

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static OtlpExportProtocol ParseProtocol(string? name) => name?.ToLowerInvariant() switch
    {
        null or "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
        "grpc" => OtlpExportProtocol.Grpc,
        _ => throw new InvalidOperationException($"The OTLP protocol '{name}' is not supported: use http/protobuf or grpc."),
    };

    /// <summary><c>key1=value1,key2=value2</c>, values percent-encoded (the OpenTelemetry environment variable format); malformed pairs are skipped.</summary>
    private static Dictionary<string, object> ResourceAttributes(string? text)
    {
        var attributes = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var pair in (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                continue;
            }

            var key = pair[..equals].Trim();
            var value = Uri.UnescapeDataString(pair[(equals + 1)..].Trim());
            if (key.Length > 0)
            {
                attributes[key] = value;
            }
        }

        return attributes;
    }

    public override string ToString() => Enabled
        ? string.Create(CultureInfo.InvariantCulture, $"{ServiceName} -> {Endpoint} ({Protocol})")
        : $"{ServiceName} (no export)";
}
