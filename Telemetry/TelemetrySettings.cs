namespace CloudEdge.Telemetry;

/// <summary>What a process exports: its default service name and the ActivitySources and Meters it owns.</summary>
public sealed record TelemetrySettings
{
    /// <summary>Used when neither <c>Telemetry:ServiceName</c>, <c>OTEL_SERVICE_NAME</c> nor <c>OTEL_RESOURCE_ATTRIBUTES</c> names the service.</summary>
    public required string DefaultServiceName { get; init; }

    /// <summary>ActivitySource names whose spans are exported.</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    /// <summary>Meter names whose instruments are exported.</summary>
    public IReadOnlyList<string> Meters { get; init; } = [];

    /// <summary>The resource's <c>service.instance.id</c> (a gateway id, say); null: none.</summary>
    public string? ServiceInstanceId { get; init; }
}
