using System.Text.Json;
namespace CloudEdge.Grains;

[GenerateSerializer]
[Alias("cloudedge.ModelState")]
public sealed class ModelState
{
    [Id(0)]
    public bool Registered { get; set; }

    [Id(1)]
    public string Name { get; set; } = string.Empty;

    [Id(2)]
    public string Version { get; set; } = string.Empty;

    [Id(3)]
    public string Sha256 { get; set; } = string.Empty;

    [Id(4)]
    public long Size { get; set; }

    [Id(5)]
    public string ManifestJson { get; set; } = "{}";

    [Id(6)]
    public DateTimeOffset RegisteredAt { get; set; }
}

internal sealed class ModelGrain : Grain, IModelGrain
{
    public const int MaxManifestLength = 64 * 1024;

    private readonly IPersistentState<ModelState> state;
    private readonly TimeProvider time;

    public ModelGrain([PersistentState("model", PlatformStorage.Name)] IPersistentState<ModelState> state, TimeProvider time)
    {
        this.state = state;
        this.time = time;
    }

    private ModelState S => state.State;

    public async Task<ModelView> Register(RegisterModel command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureId(command.Name, "name");
        Identifiers.EnsureId(command.Version, "version");
        if (!string.Equals(ModelKey.Of(command.Name, command.Version), this.GetPrimaryKeyString(), StringComparison.Ordinal))
        {
            throw new InvalidInputException("invalid_id", "name", "The model's name and version do not match this registry entry.");
        }

        if (command.Sha256 is not { Length: 64 } || command.Sha256.Any(c => c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f'))) || command.Size <= 0)
        {
            throw new InvalidInputException("invalid_sha256", "sha256", "A model needs the lower-case hex sha256 and the size of its bytes.");
        }

        var manifest = NormalizeManifest(command.ManifestJson);
        if (S.Registered)
        {
            if (string.Equals(S.Sha256, command.Sha256, StringComparison.Ordinal))
            {
                return View();
            }

            throw new DomainConflictException("model_version_exists",
                $"Model '{command.Name}' version '{command.Version}' is registered with other bytes (sha256 {S.Sha256}); versions are immutable, upload a new version.");
        }

        S.Registered = true;
        S.Name = command.Name;
        S.Version = command.Version;
        S.Sha256 = command.Sha256;
        S.Size = command.Size;
        S.ManifestJson = manifest;
        S.RegisteredAt = time.GetUtcNow();
        await state.WriteOrReloadAsync();
        return View();
    }

    public Task<ModelView> Get() =>
        S.Registered
            ? Task.FromResult(View())
            : throw new EntityNotFoundException("model_not_found", $"Model version '{this.GetPrimaryKeyString()}' is not registered.");

    private ModelView View() => new(S.Name, S.Version, S.Sha256, S.Size, S.ManifestJson, S.RegisteredAt);

    private static string NormalizeManifest(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return "{}";
        }

        if (json.Length > MaxManifestLength)
        {
            throw new InvalidInputException("manifest_too_large", "manifest", $"A manifest is at most {MaxManifestLength} characters.");
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidInputException("invalid_manifest", "manifest", "A manifest is a JSON object.");
            }

            return JsonSerializer.Serialize(document.RootElement);
        }
        catch (JsonException)
        {
            throw new InvalidInputException("invalid_manifest", "manifest", "The manifest is not valid JSON.");
        }
    }
}
