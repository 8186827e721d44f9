namespace CloudEdge.Grains;

/// <summary>
/// One version of a model in the registry, keyed by <see cref="ModelKey.Of"/>(name, version): the sha256 and
/// size of its bytes (stored content-addressed by the host) and its manifest. A version is
/// immutable: registering it again with the same bytes returns the first record, with other bytes it
/// is a conflict.
/// </summary>
[Alias("cloudedge.IModelGrain")]
public interface IModelGrain : IGrainWithStringKey
{
    /// <exception cref="DomainConflictException">The version is registered with other bytes.</exception>
    Task<ModelView> Register(RegisterModel command);

    /// <exception cref="EntityNotFoundException">The version is not registered.</exception>
    [ReadOnly]
    Task<ModelView> Get();
}

public static class ModelKey
{
    /// <summary>The grain key of a model version: ids never contain ':', so the key is unambiguous.</summary>
    public static string Of(string name, string version) => $"{name}:{version}";
}

/// <summary><see cref="ManifestJson"/> is a JSON object (the manifest fields the uploader gave), kept as text.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.RegisterModel")]
public sealed record RegisterModel(string Name, string Version, string Sha256, long Size, string ManifestJson);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.ModelView")]
public sealed record ModelView(string Name, string Version, string Sha256, long Size, string ManifestJson, DateTimeOffset RegisteredAt)
{
    public ModelRef Ref => new(Name, Version, Sha256, Size);
}
