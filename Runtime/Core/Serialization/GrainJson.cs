using System.Text.Json;
using System.Text.Json.Serialization;
using CloudEdge.Runtime.References;

namespace CloudEdge.Runtime.Serialization;

/// <summary>
/// System.Text.Json settings for grain state and messages. Tolerant of versions: unknown members are
/// ignored and missing ones keep their defaults, so adding or removing a field never breaks stored
/// state. Grain references are written as their grain id and interface and come back as live references.
/// </summary>
internal sealed class GrainJson
{
    public GrainJson(GrainFactory factory)
    {
        Options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
            NumberHandling = JsonNumberHandling.AllowReadingFromString,
        };
        Options.Converters.Add(new GrainReferenceConverterFactory(factory));
        Options.MakeReadOnly(populateMissingResolver: true);
    }

    public JsonSerializerOptions Options { get; }

    public string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public T? Deserialize<T>(string json) => JsonSerializer.Deserialize<T>(json, Options);

    private sealed class GrainReferenceConverterFactory(GrainFactory factory) : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) =>
            typeToConvert.IsInterface && typeof(IAddressable).IsAssignableFrom(typeToConvert) && typeToConvert != typeof(IAddressable);

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(GrainReferenceConverter<>).MakeGenericType(typeToConvert), factory)!;
    }

    private sealed class GrainReferenceConverter<TInterface>(GrainFactory factory) : JsonConverter<TInterface>
        where TInterface : class
    {
        public override TInterface? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Null)
            {
                return null;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException($"A grain reference ({typeToConvert.Name}) must be an object with 'grainId' and 'interface'.");
            }

            string? id = null;
            string? interfaceName = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var name = reader.GetString();
                reader.Read();
                if (string.Equals(name, "grainId", StringComparison.OrdinalIgnoreCase))
                {
                    id = reader.GetString();
                }
                else if (string.Equals(name, "interface", StringComparison.OrdinalIgnoreCase))
                {
                    interfaceName = reader.GetString();
                }
                else
                {
                    reader.Skip();
                }
            }

            if (id is null)
            {
                throw new JsonException($"A grain reference ({typeToConvert.Name}) has no 'grainId'.");
            }

            var grainInterface = typeToConvert;
            if (interfaceName is not null && Type.GetType(interfaceName, throwOnError: false) is { } stored && typeToConvert.IsAssignableFrom(stored))
            {
                grainInterface = stored;
            }

            if (!typeof(IGrain).IsAssignableFrom(grainInterface))
            {
                throw new JsonException($"{grainInterface.Name} is not a grain interface; a stored grain reference needs one.");
            }

            return (TInterface)factory.GetGrain(grainInterface, GrainId.Parse(id));
        }

        public override void Write(Utf8JsonWriter writer, TInterface value, JsonSerializerOptions options)
        {
            if (value is not IGrainIdentity identity)
            {
                throw new JsonException($"{value.GetType().Name} is not a grain reference; only references can be stored in place of {typeof(TInterface).Name}.");
            }

            var grainInterface = value is GrainReference reference ? reference.InterfaceType : typeof(TInterface);
            writer.WriteStartObject();
            writer.WriteString("grainId", identity.GrainId.ToString());
            writer.WriteString("interface", $"{grainInterface.FullName}, {grainInterface.Assembly.GetName().Name}");
            writer.WriteEndObject();
        }
    }
}
