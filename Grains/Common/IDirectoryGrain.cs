namespace CloudEdge.Grains;

/// <summary>
/// The ids of every entity of one kind (the grain's key: <see cref="Gateways"/> or <see cref="Devices"/>),
/// in the order they were first seen, for administrators' fleet listings. Like the user directory, one
/// activation per kind suits thousands of entities, not millions.
/// </summary>
[Alias("cloudedge.IDirectoryGrain")]
public interface IDirectoryGrain : IGrainWithStringKey
{
    public const string Gateways = "gateways";

    public const string Devices = "devices";

    /// <summary>Adds an id; adding twice is a no-op.</summary>
    Task Add(string id);

    [ReadOnly]
    Task<IdPage> List(int offset, int limit);
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.IdPage")]
public sealed record IdPage(IReadOnlyList<string> Ids, int Total);

[GenerateSerializer]
[Alias("cloudedge.DirectoryState")]
public sealed class DirectoryState
{
    [Id(0)]
    public List<string> Ids { get; set; } = [];
}

internal sealed class DirectoryGrain : Grain, IDirectoryGrain
{
    private readonly IPersistentState<DirectoryState> state;
    private readonly IdSet ids;

    public DirectoryGrain([PersistentState("directory", PlatformStorage.Name)] IPersistentState<DirectoryState> state)
    {
        this.state = state;
        ids = new IdSet(() => state.State.Ids);
    }

    public async Task Add(string id)
    {
        Identifiers.EnsureId(id, "id");
        await ids.AddAndWriteAsync(id, state);
    }

    public Task<IdPage> List(int offset, int limit)
    {
        var (page, total) = ids.Page(offset, limit);
        return Task.FromResult(new IdPage(page, total));
    }
}
