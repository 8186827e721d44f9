using System.Reflection;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using CloudEdge.Runtime.References;
using CloudEdge.Runtime.Serialization;

namespace CloudEdge.Runtime.Messaging;

/// <summary>
/// The wire form of a grain call, for a transport between silos: target, interface, method id,
/// arguments serialized with System.Text.Json by their declared parameter types, and headers (request
/// context, call chain, source). The local transport never uses it: it copies instead.
/// </summary>
internal sealed class MessageCodec(GrainJson json, GrainFactory factory)
{
    private static readonly ConcurrentDictionary<(Type, int), MethodDescriptor> ById = new();

    public byte[] Encode(Request request)
    {
        if (request is not IEncodableMessage message)
        {
            throw new ArgumentException($"{request.GetType().Name} is not a grain call and cannot be sent to another silo.", nameof(request));
        }

        var descriptor = message.Descriptor;
        var arguments = new JsonElement[message.Arguments.Length];
        for (var i = 0; i < arguments.Length; i++)
        {
            arguments[i] = JsonSerializer.SerializeToElement(message.Arguments[i], descriptor.Parameters[i].ParameterType, json.Options);
        }

        var envelope = new Envelope
        {
            Target = request.Target.ToString(),
            Interface = $"{descriptor.InterfaceType.FullName}, {descriptor.InterfaceType.Assembly.GetName().Name}",
            MethodId = descriptor.MethodId,
            Arguments = arguments,
            Source = request.Source?.ToString(),
            CallChain = request.Chain?.ToList().Select(g => g.ToString()).ToArray(),
            RequestContext = request.RequestContext?.ToDictionary(p => p.Key, p => JsonSerializer.SerializeToElement(p.Value, p.Value.GetType(), json.Options)),
        };
        return JsonSerializer.SerializeToUtf8Bytes(envelope, json.Options);
    }

    public Request Decode(ReadOnlySpan<byte> data)
    {
        var envelope = JsonSerializer.Deserialize<Envelope>(data, json.Options) ?? throw new JsonException("Empty message.");
        var grainInterface = Type.GetType(envelope.Interface ?? "", throwOnError: false)
            ?? throw new JsonException($"Unknown grain interface '{envelope.Interface}'.");
        var descriptor = ById.GetOrAdd((grainInterface, envelope.MethodId), static key => FindMethod(key.Item1, key.Item2));
        var arguments = new object?[descriptor.Parameters.Length];
        if ((envelope.Arguments?.Length ?? 0) != arguments.Length)
        {
            throw new JsonException($"{descriptor.DisplayName} takes {arguments.Length} arguments; the message has {envelope.Arguments?.Length ?? 0}.");
        }

        for (var i = 0; i < arguments.Length; i++)
        {
            arguments[i] = envelope.Arguments![i].Deserialize(descriptor.Parameters[i].ParameterType, json.Options);
        }

        var target = GrainId.Parse(envelope.Target ?? "");
        factory.Validate(descriptor.InterfaceType, target);
        var request = descriptor.CreateRequest(target, arguments);
        request.Source = envelope.Source is null ? null : GrainId.Parse(envelope.Source);
        CallChainNode? chain = null;
        foreach (var id in envelope.CallChain ?? [])
        {
            chain = new CallChainNode(GrainId.Parse(id), chain);
        }

        request.Chain = chain;
        if (envelope.RequestContext is { Count: > 0 } values)
        {
            request.RequestContext = values.ToImmutableDictionary(p => p.Key, p => ToValue(p.Value), StringComparer.Ordinal);
        }

        return request;
    }

    private static object ToValue(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString()!,
        JsonValueKind.Number when element.TryGetInt64(out var integer) => integer,
        JsonValueKind.Number => element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => element.Clone(),
    };

    private static MethodDescriptor FindMethod(Type grainInterface, int methodId) =>
        grainInterface.GetInterfaces().Append(grainInterface)
            .SelectMany(i => i.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            .Select(MethodDescriptor.Get)
            .FirstOrDefault(d => d.MethodId == methodId)
        ?? throw new JsonException($"{grainInterface.Name} has no method with id {methodId}.");

    private sealed class Envelope
    {
        public string? Target { get; set; }

        public string? Interface { get; set; }

        public int MethodId { get; set; }

        public JsonElement[]? Arguments { get; set; }

        public string? Source { get; set; }

        public string[]? CallChain { get; set; }

        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public Dictionary<string, JsonElement>? RequestContext { get; set; }
    }
}

/// <summary>What the codec needs from a grain call, whatever its result type.</summary>
internal interface IEncodableMessage
{
    MethodDescriptor Descriptor { get; }

    object?[] Arguments { get; }
}
