namespace CloudEdge.Testing.Otlp;

/// <summary>One span as an OTLP exporter sent it; ids are lower-case hex, <see cref="ParentSpanId"/> null for a root.</summary>
public sealed record OtlpSpan(
    string ServiceName,
    string Scope,
    string TraceId,
    string SpanId,
    string? ParentSpanId,
    string TraceState,
    string Name,
    OtlpSpanKind Kind,
    ulong StartTimeUnixNano,
    ulong EndTimeUnixNano,
    IReadOnlyDictionary<string, object?> Attributes,
    IReadOnlyList<OtlpLink> Links,
    IReadOnlyDictionary<string, object?> Resource,
    int StatusCode)
{
    /// <summary>A string attribute's value, or null.</summary>
    public string? Attribute(string key) => Attributes.TryGetValue(key, out var value) ? value as string ?? Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) : null;

    public override string ToString() => $"{ServiceName} {Name} ({Kind}) {TraceId}/{SpanId} <- {ParentSpanId ?? "root"}";
}

/// <summary>A span link: the linked span's trace and span id (hex).</summary>
public sealed record OtlpLink(string TraceId, string SpanId, string TraceState);

/// <summary>trace.proto's SpanKind (unlike <see cref="System.Diagnostics.ActivityKind"/>, 0 is "unspecified").</summary>
public enum OtlpSpanKind
{
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}
