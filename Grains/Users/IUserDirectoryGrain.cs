using CloudEdge.Runtime;

namespace CloudEdge.Grains;

/// <summary>
/// The ids of every registered user, in registration order, for administrators' listings. One
/// activation (key <see cref="Key"/>) holds them all: registrations are rare next to reads, and each
/// write rewrites the list, so this suits thousands of users, not millions.
/// </summary>
public interface IUserDirectoryGrain : IGrainWithStringKey
{
    public const string Key = "all";

    /// <summary>Adds a user id; adding twice is a no-op.</summary>
    Task Add(string userId);

    [ReadOnly]
    Task<UserIdPage> List(int offset, int limit);
}

[Immutable]
public sealed record UserIdPage(IReadOnlyList<string> UserIds, int Total);

public sealed class UserDirectoryState
{
    public List<string> UserIds { get; set; } = [];
}

public sealed class UserDirectoryGrain : Grain, IUserDirectoryGrain
{
    private readonly IPersistentState<UserDirectoryState> state;
    private readonly IdSet ids;

    public UserDirectoryGrain([PersistentState("users")] IPersistentState<UserDirectoryState> state)
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
