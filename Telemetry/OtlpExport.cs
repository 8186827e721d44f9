using Microsoft.Extensions.Configuration;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;

namespace CloudEdge.Telemetry;

/// <summary>
/// Where and how a process exports, read once from configuration (<c>Telemetry:*</c> or the standard
/// <c>OTEL_*</c> variables): the service name, the collector's base URL (null: no export) and the protocol.
/// </summary>
public sealed record OtlpExport(string ServiceName, Uri? Endpoint, OtlpExportProtocol Protocol, IReadOnlyDictionary<string, object> Attributes, string? ServiceInstanceId)
{
    /// <summary>Throws on an endpoint that is not an absolute http(s) URI or an unknown protocol.</summary>
    public static OtlpExport From(IConfiguration configuration, TelemetrySettings settings)
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
            return new OtlpExport(serviceName, null, protocol, attributes, settings.ServiceInstanceId);
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"The OTLP endpoint '{endpoint}' is not an absolute http(s) URI.");
        }

        // A base URL without a trailing slash would lose its last segment when the signal path is appended.
        uri = uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        return new OtlpExport(serviceName, uri, protocol, attributes, settings.ServiceInstanceId);
    }

    /// <summary>The resource every signal carries: the SDK, the configured attributes and the service.</summary>
    public void Describe(ResourceBuilder resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        resource.AddTelemetrySdk()
            .AddAttributes(Attributes)
            .AddService(ServiceName, serviceInstanceId: ServiceInstanceId, autoGenerateServiceInstanceId: ServiceInstanceId is null);
    }

    public void Traces(OtlpExporterOptions options) => Configure(options, "v1/traces");

    public void Metrics(OtlpExporterOptions options) => Configure(options, "v1/metrics");

    // With HTTP/protobuf the exporter posts to the base URL plus the signal's path; gRPC takes the base URL.
    private void Configure(OtlpExporterOptions options, string signalPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = Endpoint ?? throw new InvalidOperationException("No OTLP endpoint is configured.");
        options.Endpoint = Protocol == OtlpExportProtocol.Grpc ? endpoint : new Uri(endpoint, signalPath);
        options.Protocol = Protocol;
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

}
