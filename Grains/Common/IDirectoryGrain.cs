using CloudEdge.Runtime;

namespace CloudEdge.Grains;

/// <summary>
/// The ids of every entity of one kind (the grain's key: <see cref="Gateways"/> or <see cref="Devices"/>),
/// in the order they were first seen, for administrators' fleet listings. Like the user directory, one
/// activation per kind suits thousands of entities, not millions.
/// </summary>
public interface IDirectoryGrain : IGrainWithStringKey
{
    public const string Gateways = "gateways";

    public const string Devices = "devices";

    /// <summary>Adds an id; adding twice is a no-op.</summary>
    Task Add(string id);

    [ReadOnly]
    Task<IdPage> List(int offset, int limit);
}

[Immutable]
public sealed record IdPage(IReadOnlyList<string> Ids, int Total);

public sealed class DirectoryState
{
    public List<string> Ids { get; set; } = [];
}

public sealed class DirectoryGrain : Grain, IDirectoryGrain
{
    private readonly IPersistentState<DirectoryState> state;
    private readonly IdSet ids;

    public DirectoryGrain([PersistentState("directory")] IPersistentState<DirectoryState> state)
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
