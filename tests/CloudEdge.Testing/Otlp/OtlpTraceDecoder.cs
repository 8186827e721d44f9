using CloudEdge.Testing.Protobuf;

namespace CloudEdge.Testing.Otlp;

/// <summary>
/// Decodes an OTLP <c>ExportTraceServiceRequest</c> (opentelemetry-proto, collector/trace/v1 and trace/v1) from the
/// protobuf wire format. Field numbers: request resource_spans = 1; ResourceSpans resource = 1, scope_spans = 2;
/// Resource attributes = 1; ScopeSpans scope = 1 (InstrumentationScope name = 1), spans = 2; Span trace_id = 1,
/// span_id = 2, trace_state = 3, parent_span_id = 4, name = 5, kind = 6, start_time_unix_nano = 7 (fixed64),
/// end_time_unix_nano = 8 (fixed64), attributes = 9, links = 13, status = 15 (code = 3); Link trace_id = 1,
/// span_id = 2, trace_state = 3; KeyValue key = 1, value = 2; AnyValue string = 1, bool = 2, int = 3, double = 4.
/// Unknown fields are skipped.
/// </summary>
public static class OtlpTraceDecoder
{
    private const int Message = ProtobufReader.LengthDelimited;

    /// <summary>Called for each field of a message; it must read or skip the field's value.</summary>
    private delegate void FieldReader(int field, int wireType, ref ProtobufReader reader);

    public static List<OtlpSpan> Decode(ReadOnlySpan<byte> request)
    {
        var spans = new List<OtlpSpan>();
        ReadFields(request, (int field, int wire, ref ProtobufReader r) =>
        {
            if (field == 1 && wire == Message)
            {
                ReadResourceSpans(r.ReadLengthDelimited(), spans);
            }
            else
            {
                r.Skip(wire);
            }
        });
        return spans;
    }

    private static void ReadFields(ReadOnlySpan<byte> message, FieldReader read)
    {
        var reader = new ProtobufReader(message);
        while (!reader.End)
        {
            var (field, wire) = reader.ReadTag();
            read(field, wire, ref reader);
        }
    }

    /// <summary>Reads the one length-delimited field <paramref name="wanted"/> of each occurrence and skips the rest.</summary>
    private static void ReadField(ReadOnlySpan<byte> message, int wanted, Action<byte[]> read) =>
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            if (field == wanted && wire == Message)
            {
                read(r.ReadLengthDelimited().ToArray());
            }
            else
            {
                r.Skip(wire);
            }
        });

    private static void ReadResourceSpans(ReadOnlySpan<byte> message, List<OtlpSpan> spans)
    {
        // The resource may come after the scopes on the wire: collect both, then label.
        var resource = new Dictionary<string, object?>(StringComparer.Ordinal);
        var scopes = new List<byte[]>();
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            switch (field, wire)
            {
                case (1, Message): ReadField(r.ReadLengthDelimited(), 1, attribute => ReadKeyValue(attribute, resource)); break;
                case (2, Message): scopes.Add(r.ReadLengthDelimited().ToArray()); break;
                default: r.Skip(wire); break;
            }
        });
        var serviceName = resource.TryGetValue("service.name", out var name) ? name as string ?? string.Empty : string.Empty;
        foreach (var scope in scopes)
        {
            var scopeName = string.Empty;
            var bodies = new List<byte[]>();
            ReadFields(scope, (int field, int wire, ref ProtobufReader r) =>
            {
                switch (field, wire)
                {
                    case (1, Message): ReadField(r.ReadLengthDelimited(), 1, text => scopeName = System.Text.Encoding.UTF8.GetString(text)); break;
                    case (2, Message): bodies.Add(r.ReadLengthDelimited().ToArray()); break;
                    default: r.Skip(wire); break;
                }
            });
            spans.AddRange(bodies.Select(body => ReadSpan(body, serviceName, scopeName, resource)));
        }
    }

    private static OtlpSpan ReadSpan(ReadOnlySpan<byte> message, string serviceName, string scope, IReadOnlyDictionary<string, object?> resource)
    {
        string traceId = string.Empty, spanId = string.Empty, traceState = string.Empty, name = string.Empty;
        string? parent = null;
        var kind = OtlpSpanKind.Unspecified;
        ulong start = 0, end = 0;
        var status = 0;
        var attributes = new Dictionary<string, object?>(StringComparer.Ordinal);
        var links = new List<OtlpLink>();
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            switch (field, wire)
            {
                case (1, Message): traceId = Hex(r.ReadLengthDelimited()); break;
                case (2, Message): spanId = Hex(r.ReadLengthDelimited()); break;
                case (3, Message): traceState = r.ReadString(); break;
                case (4, Message):
                    var parentBytes = r.ReadLengthDelimited();
                    parent = parentBytes.IndexOfAnyExcept((byte)0) < 0 ? null : Hex(parentBytes);
                    break;
                case (5, Message): name = r.ReadString(); break;
                case (6, ProtobufReader.Varint): kind = (OtlpSpanKind)(int)r.ReadVarint(); break;
                case (7, ProtobufReader.Fixed64): start = r.ReadFixed64(); break;
                case (8, ProtobufReader.Fixed64): end = r.ReadFixed64(); break;
                case (9, Message): ReadKeyValue(r.ReadLengthDelimited(), attributes); break;
                case (13, Message): links.Add(ReadLink(r.ReadLengthDelimited())); break;
                case (15, Message): status = ReadStatusCode(r.ReadLengthDelimited()); break;
                default: r.Skip(wire); break;
            }
        });
        return new OtlpSpan(serviceName, scope, traceId, spanId, parent, traceState, name, kind, start, end, attributes, links, resource, status);
    }

    private static OtlpLink ReadLink(ReadOnlySpan<byte> message)
    {
        string traceId = string.Empty, spanId = string.Empty, traceState = string.Empty;
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            switch (field, wire)
            {
                case (1, Message): traceId = Hex(r.ReadLengthDelimited()); break;
                case (2, Message): spanId = Hex(r.ReadLengthDelimited()); break;
                case (3, Message): traceState = r.ReadString(); break;
                default: r.Skip(wire); break;
            }
        });
        return new OtlpLink(traceId, spanId, traceState);
    }

    private static int ReadStatusCode(ReadOnlySpan<byte> message)
    {
        var code = 0;
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            if (field == 3 && wire == ProtobufReader.Varint)
            {
                code = (int)r.ReadVarint();
            }
            else
            {
                r.Skip(wire);
            }
        });
        return code;
    }

    private static void ReadKeyValue(ReadOnlySpan<byte> message, Dictionary<string, object?> into)
    {
        var key = string.Empty;
        object? value = null;
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            switch (field, wire)
            {
                case (1, Message): key = r.ReadString(); break;
                case (2, Message): value = ReadAnyValue(r.ReadLengthDelimited()); break;
                default: r.Skip(wire); break;
            }
        });
        into[key] = value;
    }

    /// <summary>string, bool, int64 and double values; arrays, maps and bytes are kept as their raw bytes.</summary>
    private static object? ReadAnyValue(ReadOnlySpan<byte> message)
    {
        object? value = null;
        ReadFields(message, (int field, int wire, ref ProtobufReader r) =>
        {
            switch (field, wire)
            {
                case (1, Message): value = r.ReadString(); break;
                case (2, ProtobufReader.Varint): value = r.ReadVarint() != 0; break;
                case (3, ProtobufReader.Varint): value = (long)r.ReadVarint(); break;
                case (4, ProtobufReader.Fixed64): value = BitConverter.UInt64BitsToDouble(r.ReadFixed64()); break;
                case (_, Message): value = r.ReadLengthDelimited().ToArray(); break;
                default: r.Skip(wire); break;
            }
        });
        return value;
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
