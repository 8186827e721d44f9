namespace CloudEdge.Grains;

/// <summary>
/// The ids of every registered user, in registration order, for administrators' listings. One
/// activation (key <see cref="Key"/>) holds them all: registrations are rare next to reads, and each
/// write rewrites the list, so this suits thousands of users, not millions.
/// </summary>
[Alias("cloudedge.IUserDirectoryGrain")]
public interface IUserDirectoryGrain : IGrainWithStringKey
{
    public const string Key = "all";

    /// <summary>Adds a user id; adding twice is a no-op.</summary>
    Task Add(string userId);

    [ReadOnly]
    Task<UserIdPage> List(int offset, int limit);
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.UserIdPage")]
public sealed record UserIdPage(IReadOnlyList<string> UserIds, int Total);

[GenerateSerializer]
[Alias("cloudedge.UserDirectoryState")]
public sealed class UserDirectoryState
{
    [Id(0)]
    public List<string> UserIds { get; set; } = [];
}

internal sealed class UserDirectoryGrain : Grain, IUserDirectoryGrain
{
    private readonly IPersistentState<UserDirectoryState> state;
    private readonly IdSet ids;

    public UserDirectoryGrain([PersistentState("users", PlatformStorage.Name)] IPersistentState<UserDirectoryState> state)
    {
        this.state = state;
        ids = new IdSet(() => state.State.UserIds);
    }

    public async Task Add(string userId)
    {
        Identifiers.EnsureId(userId, "userId");
        await ids.AddAndWriteAsync(userId, state);
    }

    public Task<UserIdPage> List(int offset, int limit)
    {
        var (page, total) = ids.Page(offset, limit);
        return Task.FromResult(new UserIdPage(page, total));
    }
}
